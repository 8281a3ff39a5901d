"""Running app.py under streamlit's AppTest the way a server runs it.

AppTest (streamlit 1.67, `testing/v1/app_test.py`) sets `PagesManager.uses_pages_directory`
back to None before every run, and a new PagesManager then sets it to True because the
checkout has a `pages/` folder. A run after the first (`at.switch_page(...).run()`, a widget
change) then executes the page script alone, Streamlit's old pages-folder mode: no sidebar,
no login check, no cohort. A server sets the flag to False once app.py calls `st.navigation`
and keeps it. Streamlit offers no option for this (the only other way is renaming `pages/`,
which the project's layout names), so this module is the one place that patches it; the
tests (tests/conftest.py `real_navigation`), tools/dump_views.py and benchmarks/pages.py
import it, and tests/test_browser_pages.py checks that a real server behaves as patched.

    from tools.apptest import real_navigation
    undo = real_navigation()   # every AppTest run after this goes through app.py
    ...
    undo()
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["real_navigation"]


def real_navigation() -> Callable[[], None]:
    """Make each AppTest run execute app.py (its navigation, sidebar and login) as a server
    does; returns the function that puts streamlit back as it was."""
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self: PagesManager, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init  # type: ignore[method-assign]

    def undo() -> None:
        PagesManager.__init__ = original  # type: ignore[method-assign]

    return undo
