"""Who may open which study on a shared server, and which folder a study name may mean.

No streamlit here: `app.py` and `components/sidebar.py` call these rules with the logged-in user
and the URL's study name.

- Study names come only from the folders listed directly below `STUDIES_ROOT`. A name from a URL
  is matched against that list, never joined onto a path: `..`, absolute paths, separators,
  URL-encoded (also double-encoded) traversal and symlinks that resolve outside the root are
  refused with a message that says why (OWASP "Path Traversal": allow-list the names, then
  canonicalise and check the prefix).
- A study may restrict itself to named users in its `study.toml`:

      [access]
      emails = ["ana@lab.org", "@partner.org"]   # an entry starting with "@" admits a domain
      groups = ["cart-core"]                      # matched against the identity's groups claim

  No `[access]` table means every user who got past the login may open the study. A study with
  an allow-list and a viewer without identity is refused (fail closed), as is a study whose
  study.toml cannot be read but names an `[access]` table. E-mail entries match only an
  e-mail the identity provider marked verified (`email_verified` true) or a user name proven
  by the proxy; `preferred_username` and `upn` are shown, never used to admit.
- Who is looking on a server: an OIDC login (`st.login`, secrets.toml `[auth]`), or a user name
  from the reverse proxy, believed only when the request also carries the proxy's shared
  secret (secrets.toml `[proxy]`, compared in constant time). `login_config` decides which
  applies and refuses (fail closed) a server without either.
- One JSON line per event (page view, download, export, refusal, filter change) with user,
  client address and a session tag, for the server's access log.

The package, one job per module: `names` (study names under the root), `allowlist` (who may
open or create a study), `login` (which login applies, the proxy check), `audit` (the access
log).
"""

from components.access.allowlist import (
    AccessRule,
    Viewer,
    may_create_studies,
    may_open,
    read_access,
    study_creators,
)
from components.access.audit import access_log_line, event_line, session_tag
from components.access.login import (
    MIN_SECRET_LENGTH,
    PROXY_SECRET_HEADER,
    LoginConfig,
    ProxyCheck,
    check_proxy,
    is_loopback,
    login_config,
    proxy_address,
)
from components.access.names import AccessError, list_studies, resolve_study

__all__ = ["AccessError", "AccessRule", "Viewer", "LoginConfig", "ProxyCheck", "list_studies",
           "resolve_study", "read_access", "may_open", "login_config", "check_proxy",
           "proxy_address", "session_tag", "is_loopback", "access_log_line", "event_line",
           "may_create_studies", "study_creators", "PROXY_SECRET_HEADER",
           "MIN_SECRET_LENGTH"]
