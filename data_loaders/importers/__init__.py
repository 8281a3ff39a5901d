"""Files as labs hand them over -> a study folder (`cli.py import SRC --out STUDY`, the Import
data page). See docs/importing.md.

- `plan`: propose (inspect every file, decide, list questions) and write a new study;
- `detect`: what a file or worksheet is and which column holds what;
- `sheet`: the `sheet` source format the loader applies on every load (wide and long lab
  sheets, units rows, title rows, cell clean-up);
- `headers`, `dates`: units and analytes in headers, column roles; every date form;
- `edits`, `uploads`: the Import page's editable mapping and uploaded files;
- `single_cell`: the `[single_cell]` proposal for single-cell files;
- `from_format`: one file in a known format converted once (`cli.py import --from FORMAT`).
"""
