"""Gate files for the demo's synthetic FCS files (sample_data/demo/flow), written by hand, and
the event counts they must give, computed here with numpy from the files' own events.

The panel: FSC-A, SSC-A, FITC-A CD3, PE-A CD7, PerCP-Cy5-5-A CD4, PE-Cy7-A CD56, APC-A CAR,
APC-H7-A CD8, BV421-A CD19, BV510-A CD14. The tree (Gating-ML ids spell + and - as pos and neg):

    Lymphocytes (polygon on FSC-A/SSC-A)
      CD3+ (CD3 >= 1000)
        CAR+ (CAR >= 1000)
        CD7- (CD7 < 2000)
      CD3- (CD3 < 1000)
        NK (CD56 >= 1000)

The workspace carries a spillover matrix (FITC spills 15% into PE) and logicle transforms, so
its counts differ from the raw thresholds and check that both are applied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LYMPH = [(30e3, 2e3), (90e3, 2e3), (90e3, 30e3), (30e3, 30e3)]
THRESH = {"CD3": 1000.0, "CAR": 1000.0, "CD7": 2000.0, "CD56": 1000.0}
CHANNELS = {"CD3": "FITC-A", "CD7": "PE-A", "CD56": "PE-Cy7-A", "CAR": "APC-A"}
SPILL_FITC_INTO_PE = 0.15
LOGICLE = {"T": 262144.0, "W": 0.5, "M": 4.5, "A": 0.0}
DETECTORS = ["FITC-A", "PE-A", "PE-Cy7-A", "APC-A"]

_NS = ('xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating" '
       'xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations" '
       'xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"')


def spill_matrix() -> np.ndarray:
    m = np.eye(len(DETECTORS))
    m[0, 1] = SPILL_FITC_INTO_PE        # row FITC-A, column PE-A: FITC signal seen in PE
    return m


# ---- FlowJo 10 workspace ---------------------------------------------------------------------
def _wsp_dim(name: str, lo: float | None = None, hi: float | None = None) -> str:
    attrs = (f' gating:min="{lo}"' if lo is not None else "") + \
        (f' gating:max="{hi}"' if hi is not None else "")
    return (f'<gating:dimension{attrs}><data-type:fcs-dimension data-type:name="{name}"/>'
            '</gating:dimension>')


def _wsp_rect(pop: str, gid: str, parent: str | None, dim: str, lo: float | None,
              hi: float | None, children: str = "") -> str:
    par = f' gating:parent_id="{parent}"' if parent else ""
    sub = f"<Subpopulations>{children}</Subpopulations>" if children else ""
    return (f'<Population name="{pop}" annotation="" owningGroup="">'
            f'<Gate gating:id="{gid}"{par}><gating:RectangleGate gating:id="{gid}"{par} '
            f'percentX="0" percentY="0">{_wsp_dim(dim, lo, hi)}</gating:RectangleGate></Gate>'
            f'{sub}</Population>')


def _wsp_tree() -> str:
    cd3pos = _wsp_rect("CD3+", "ID2", "ID1", "Comp-FITC-A", THRESH["CD3"], None,
                       _wsp_rect("CAR+", "ID3", "ID2", "Comp-APC-A", THRESH["CAR"], None)
                       + _wsp_rect("CD7-", "ID4", "ID2", "Comp-PE-A", None, THRESH["CD7"]))
    cd3neg = _wsp_rect("CD3-", "ID5", "ID1", "Comp-FITC-A", None, THRESH["CD3"],
                       _wsp_rect("NK", "ID6", "ID5", "Comp-PE-Cy7-A", THRESH["CD56"], None))
    verts = "".join(f'<gating:vertex><gating:coordinate data-type:value="{x}"/>'
                    f'<gating:coordinate data-type:value="{y}"/></gating:vertex>'
                    for x, y in LYMPH)
    return ('<Population name="Lymphocytes" annotation="" owningGroup="">'
            '<Gate gating:id="ID1"><gating:PolygonGate gating:id="ID1" quadID="-1" '
            f'gateResolution="256">{_wsp_dim("FSC-A")}{_wsp_dim("SSC-A")}{verts}'
            f'</gating:PolygonGate></Gate><Subpopulations>{cd3pos}{cd3neg}</Subpopulations>'
            '</Population>')


def _wsp_sample(sid: int, name: str, label: str | None = None) -> str:
    m = spill_matrix()
    params = "".join(f'<data-type:parameter data-type:name="{d}" userProvidedCompInfix="Comp-{d}"/>'
                     for d in DETECTORS)
    rows = "".join(
        f'<transforms:spillover data-type:parameter="{d}" userProvidedCompInfix="Comp-{d}">'
        + "".join(f'<transforms:coefficient data-type:parameter="{d2}" '
                  f'transforms:value="{m[i, j]}"/>' for j, d2 in enumerate(DETECTORS))
        + "</transforms:spillover>" for i, d in enumerate(DETECTORS))
    xforms = "".join(
        f'<transforms:logicle transforms:length="256" transforms:T="{LOGICLE["T"]}" '
        f'transforms:W="{LOGICLE["W"]}" transforms:M="{LOGICLE["M"]}" '
        f'transforms:A="{LOGICLE["A"]}"><data-type:parameter data-type:name="{p}{d}"/>'
        '</transforms:logicle>' for d in DETECTORS for p in ("", "Comp-"))
    return (f'<Sample><DataSet uri="file:flow/{name}" sampleID="{sid}"/>'
            f'<transforms:spilloverMatrix spectral="0" prefix="Comp-" name="Panel comp" '
            f'version="FlowJo-10.8.1" suffix="">'
            f'<data-type:parameters>{params}</data-type:parameters>{rows}'
            '</transforms:spilloverMatrix>'
            f'<Transformations>{xforms}</Transformations><Keywords/>'
            f'<SampleNode name="{label or name}" annotation="" owningGroup="" sampleID="{sid}">'
            f'<Subpopulations>{_wsp_tree()}</Subpopulations></SampleNode></Sample>')


def write_workspace(path: Path, fcs_names: list[str], labels: list[str] | None = None) -> Path:
    """A FlowJo 10 workspace holding `fcs_names` (all with the same tree); `labels` names the
    samples in FlowJo differently from their files (the DataSet uri still names the file)."""
    refs = "".join(f'<SampleRef sampleID="{i + 1}"/>' for i in range(len(fcs_names)))
    samples = "".join(_wsp_sample(i + 1, n, labels[i] if labels else None)
                      for i, n in enumerate(fcs_names))
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Workspace version="20.0" flowJoVersion="10.8.1" curGroup="All Samples" {_NS}>'
        '<Groups><GroupNode name="All Samples" annotation="" owningGroup="All Samples">'
        f'<Group name="All Samples"><SampleRefs>{refs}</SampleRefs></Group></GroupNode>'
        f'</Groups><SampleList>{samples}</SampleList></Workspace>\n', encoding="utf-8")
    return path


# ---- Gating-ML 2.0 (no compensation, no transforms) -----------------------------------------
def _gml_dim(name: str, lo: float | None = None, hi: float | None = None) -> str:
    attrs = (f' gating:min="{lo}"' if lo is not None else "") + \
        (f' gating:max="{hi}"' if hi is not None else "")
    return (f'<gating:dimension gating:compensation-ref="uncompensated"{attrs}>'
            f'<data-type:fcs-dimension data-type:name="{name}"/></gating:dimension>')


def write_gatingml(path: Path) -> Path:
    """The same tree as Gating-ML 2.0 (gate ids are XML ids: CD3pos for CD3+, ...), without
    compensation or transforms."""
    verts = "".join(f'<gating:vertex><gating:coordinate data-type:value="{x}"/>'
                    f'<gating:coordinate data-type:value="{y}"/></gating:vertex>'
                    for x, y in LYMPH)

    def rect(gid: str, parent: str, dim: str, lo: float | None, hi: float | None) -> str:
        return (f'<gating:RectangleGate gating:id="{gid}" gating:parent_id="{parent}">'
                f'{_gml_dim(dim, lo, hi)}</gating:RectangleGate>')

    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<gating:Gating-ML {_NS}>'
        f'<gating:PolygonGate gating:id="Lymphocytes">{_gml_dim("FSC-A")}{_gml_dim("SSC-A")}'
        f'{verts}</gating:PolygonGate>'
        + rect("CD3pos", "Lymphocytes", "FITC-A", THRESH["CD3"], None)
        + rect("CARpos", "CD3pos", "APC-A", THRESH["CAR"], None)
        + rect("CD7neg", "CD3pos", "PE-A", None, THRESH["CD7"])
        + rect("CD3neg", "Lymphocytes", "FITC-A", None, THRESH["CD3"])
        + rect("NK", "CD3neg", "PE-Cy7-A", THRESH["CD56"], None)
        + "</gating:Gating-ML>\n", encoding="utf-8")
    return path


# ---- truth ------------------------------------------------------------------------------------
GML_NAMES = {"CD3+": "CD3pos", "CD3-": "CD3neg", "CAR+": "CARpos", "CD7-": "CD7neg"}


def gml_path(path: str) -> str:
    return "/".join(GML_NAMES.get(p, p) for p in path.split("/"))


def expected_counts(fcs: Path, *, compensated: bool) -> dict[str, int]:
    """Population path (FlowJo names) -> event count, from the file's events with numpy (and
    the workspace's spillover matrix when `compensated`)."""
    from matplotlib.path import Path as Polygon

    from data_loaders.formats.fcs import read_fcs

    f = read_fcs(fcs)
    ev = f.events.astype(np.float64)
    col = {c: i for i, c in enumerate(f.channels)}
    fl = ev[:, [col[d] for d in DETECTORS]]
    if compensated:
        fl = fl @ np.linalg.inv(spill_matrix())
    v = {d: fl[:, i] for i, d in enumerate(DETECTORS)}
    lymph = Polygon(LYMPH).contains_points(ev[:, [col["FSC-A"], col["SSC-A"]]])
    cd3 = lymph & (v["FITC-A"] >= THRESH["CD3"])
    cd3n = lymph & (v["FITC-A"] < THRESH["CD3"])
    return {"/Lymphocytes": int(lymph.sum()), "/Lymphocytes/CD3+": int(cd3.sum()),
            "/Lymphocytes/CD3+/CAR+": int((cd3 & (v["APC-A"] >= THRESH["CAR"])).sum()),
            "/Lymphocytes/CD3+/CD7-": int((cd3 & (v["PE-A"] < THRESH["CD7"])).sum()),
            "/Lymphocytes/CD3-": int(cd3n.sum()),
            "/Lymphocytes/CD3-/NK": int((cd3n & (v["PE-Cy7-A"] >= THRESH["CD56"])).sum())}


def gate_or_die(job):
    """gate_file, except that the process dies on a file named die.fcs (a killed worker)."""
    import os

    from data_loaders.formats.gating import gate_file

    if Path(job.fcs).name == "die.fcs":
        os._exit(1)
    return gate_file(job)
