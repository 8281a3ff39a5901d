"""Write the bad-input corpus: small broken or unusual study files, one problem each.

    .venv/bin/python tests/bad_inputs/make_corpus.py      # rewrites the files next to this script

`cases.toml` says, for every file, which study file it plays, the problem the loader must report
and whether the study is broken (validate exits non-zero) or merely unusual (loads with a note).
The files are committed; this script documents how the binary ones (Parquet, Excel, .h5ad, .xpt)
were made and makes them again byte-for-byte where the writer is deterministic.
"""

from __future__ import annotations

import io
from pathlib import Path

HERE = Path(__file__).resolve().parent
MEAS = "subject_id,day,analyte,value,unit\n"


def _text() -> dict[str, str | bytes]:
    long_id = "P" + "x" * 5000
    return {
        # ---- patients ----------------------------------------------------------------------
        "patients_binary.csv": bytes(range(256)) * 4,
        "patients_duplicate.csv": "subject_id,age,sex,infusion_date,death_day\n"
                                  "P1,34,M,2025-01-10,\nP1,35,M,2025-01-10,\n"
                                  "P2,51,F,2025-02-01,\nP3,45,F,2025-03-01,100\n",
        "patients_site2.csv": "subject_id,age,sex,infusion_date\nP2,52,F,2025-02-03\n",
        "patients_renamed_id.csv": "name,age,sex\nP1,34,M\nP2,51,F\n",
        "patients_bad_date.csv": "subject_id,age,sex,infusion_date,death_day\n"
                                 "P1,34,M,2025-01-10,\nP2,51,F,31/31/2025,\n"
                                 "P3,45,F,2025-03-01,100\n",
        "patients_age_text.csv": "subject_id,age,sex,infusion_date,death_day\n"
                                 "P1,thirty-four,M,2025-01-10,\nP2,51,F,2025-02-01,\n"
                                 "P3,45,F,2025-03-01,100\n",
        "patients_latin1.csv": ("subject_id,age,sex,infusion_date,death_day,prior_therapy\n"
                                "P1,34,M,2025-01-10,,Ciclosporin (Müller protocol)\n"
                                "P2,51,F,2025-02-01,,hATG\nP3,45,F,2025-03-01,100,\n"
                                ).encode("latin-1"),
        "patients_bom.csv": ("\ufeffsubject_id,age,sex,infusion_date,death_day\n"
                             "P1,34,M,2025-01-10,\nP2,51,F,2025-02-01,\n"
                             "P3,45,F,2025-03-01,100\n").encode("utf-8"),
        "patients_long_id.csv": "subject_id,age,sex,infusion_date,death_day\n"
                                f"P1,34,M,2025-01-10,\nP2,51,F,2025-02-01,\n"
                                f"P3,45,F,2025-03-01,100\n{long_id},40,M,2025-01-01,\n",
        "patients_long_text.csv": "subject_id,age,sex,infusion_date,death_day,prior_therapy\n"
                                  f"P1,34,M,2025-01-10,,{'hATG + CsA; ' * 400}\n"
                                  "P2,51,F,2025-02-01,,\nP3,45,F,2025-03-01,100,\n",
        "patients_formula.csv": "subject_id,age,sex,infusion_date,death_day,prior_therapy\n"
                                "P1,34,M,2025-01-10,,\"=cmd|' /C calc'!A0\"\n"
                                "P2,51,F,2025-02-01,,@SUM(1+1)*cmd|' /C calc'!A0\n"
                                "P3,45,F,2025-03-01,100,hATG\n",
        "patients_utf16.csv": ("\ufeffsubject_id\tage\tsex\tinfusion_date\tdeath_day\r\n"
                               "P1\t34\tM\t2025-01-10\t\r\nP2\t51\tF\t2025-02-01\t\r\n"
                               "P3\t45\tF\t2025-03-01\t100\r\n").encode("utf-16-le"),
        "patients_extra_columns.csv": "subject_id,age,sex,infusion_date,death_day,favourite_colour,"
                                      "shoe_size\nP1,34,M,2025-01-10,,blue,42\n"
                                      "P2,51,F,2025-02-01,,green,38\nP3,45,F,2025-03-01,100,red,40\n",
        "patients_empty.csv": "",
        # ---- measurements ------------------------------------------------------------------
        "measurements_unknown_unit.csv": MEAS + "P1,0,ANC,0.4,10^9/L\nP1,3,HGB,5,mmol/M\n",
        "measurements_nul_in_cell.csv": MEAS + "P1,0,ANC,0.4,10^9/L\nP1,3,HGB,85,g\x00L\n",
        "measurements_unknown_analyte.csv": MEAS + "P1,0,ANC,0.4,10^9/L\nP1,3,FOOBAR,5,g/L\n",
        "measurements_mixed_units.csv": MEAS + "P1,0,ANC,0.4,10^9/L\nP1,7,ANC,900,cells/uL\n"
                                        "P2,7,ANC,1.1,K/uL\nP2,14,HGB,9.1,g/dL\n",
        "measurements_mixed_units_bad.csv": MEAS + "P1,0,HGB,85,g/L\nP1,7,HGB,9.1,g/dL\n"
                                            "P2,7,HGB,3,furlongs/fortnight\n",
        "measurements_conflicting_duplicate.csv": MEAS + "P1,0,ANC,0.4,10^9/L\n"
                                                  "P1,7,ANC,0.5,10^9/L\nP1,7,ANC,0.9,10^9/L\n",
        "measurements_before_screening.csv": MEAS + "P1,0,ANC,0.4,10^9/L\nP1,-900,ANC,0.3,10^9/L\n",
        "measurements_after_death.csv": MEAS + "P3,7,ANC,0.4,10^9/L\nP3,250,ANC,1.3,10^9/L\n",
        "measurements_negative.csv": MEAS + "P1,0,ANC,0.4,10^9/L\nP1,7,PLT,-12,10^9/L\n",
        "measurements_nan_inf.csv": MEAS + "P1,0,ANC,0.4,10^9/L\nP1,7,ANC,NaN,10^9/L\n"
                                   "P1,14,ANC,inf,10^9/L\nP2,7,PLT,-Infinity,10^9/L\n",
        "measurements_unknown_subject.csv": MEAS + "P1,0,ANC,0.4,10^9/L\nP99,7,ANC,0.9,10^9/L\n",
        "measurements_value_text.csv": MEAS + "P1,0,ANC,0.4,10^9/L\nP1,7,ANC,high,10^9/L\n",
        "measurements_day_text.csv": MEAS + "P1,0,ANC,0.4,10^9/L\nP1,D7,ANC,0.9,10^9/L\n",
        "measurements_bad_date.csv": "subject_id,date,analyte,value,unit\n"
                                     "P1,2025-01-17,ANC,0.4,10^9/L\n"
                                     "P1,17th of January,ANC,0.5,10^9/L\n",
        "measurements_header_only.csv": MEAS,
        "measurements_empty.csv": "",
        "measurements_whitespace.csv": "\n\n   \n\t\n",
        "measurements_semicolon.csv": "subject_id;day;analyte;value;unit\nP1;0;ANC;0,45;10^9/L\n"
                                      "P2;7;PLT;22;10^9/L\n",
        "measurements_renamed_columns.csv": "Patient,Visit,Test,Result,Units\nP1,0,ANC,0.4,10^9/L\n",
        "measurements_ragged.csv": MEAS + "P1,0,ANC,0.4,10^9/L\nP1,7,ANC,0.9,10^9/L,extra,fields\n",
        "measurements_unbalanced_quote.csv": MEAS + "P1,0,ANC,0.4,10^9/L\n"
                                             "P1,7,\"ANC,0.9,10^9/L\nP1,14,ANC,1.0,10^9/L\n",
        "measurements_formula.csv": "subject_id,day,analyte,value,unit,comment\n"
                                    "P1,0,ANC,0.4,10^9/L,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\n"
                                    "P1,7,ANC,0.9,10^9/L,+cmd|' /C calc'!A0\n",
        "measurements_garbage.parquet": b"PAR1" + bytes((i * 37) % 251 for i in range(600)),
        "measurements_gzip_broken.csv.gz": b"\x1f\x8b\x08\x00" + b"not really gzip" * 8,
        # ---- events ------------------------------------------------------------------------
        "events_unknown_category.csv": "subject_id,day,category\nP1,0,infusion\nP1,5,party\n",
        "events_grade_text.csv": "subject_id,day,category,term,grade\nP1,0,infusion,CAR-T,\n"
                                 "P1,3,crs,CRS,severe\n",
        "events_negative_units.csv": "subject_id,day,category,product,units\n"
                                     "P2,5,transfusion,PLT,1\nP2,9,transfusion,RBC,-2\n",
        "events_end_before_start.csv": "subject_id,day,end_day,category,term,grade\n"
                                       "P1,3,8,crs,CRS,1\nP1,10,4,icans,ICANS,2\n",
        "events_conflicting_duplicate.csv": "subject_id,day,category,term,grade\n"
                                            "P1,3,crs,CRS,1\nP1,3,crs,CRS,3\n"
                                            "P1,0,infusion,CAR-T,\n",
        "events_pipe.txt": "subject_id|day|category|term|grade\nP1|0|infusion|CAR-T|\n"
                           "P1|3|crs|CRS|1\n",
        # ---- responses ---------------------------------------------------------------------
        "responses_bad_value.csv": "subject_id,day,response\nP1,28,PR\nP2,28,VGPR\n",
        "responses_unknown_subject.csv": "subject_id,day,response\nP1,28,PR\nSAA-999,28,CR\n",
        # ---- samples -----------------------------------------------------------------------
        "samples_duplicate_id.csv": "sample_id,subject_id,day,timepoint,tissue,assay\n"
                                    "S1,P1,-7,baseline,blood,rnaseq\nS2,P1,28,D28,blood,rnaseq\n"
                                    "S3,P2,-7,baseline,marrow,rnaseq\nS4,P3,28,D28,blood,rnaseq\n"
                                    "S4,P3,90,M3,blood,rnaseq\n",
        "samples_missing_day.csv": "sample_id,subject_id,timepoint\nS1,P1,baseline\n",
        # ---- sample-keyed omics ------------------------------------------------------------
        "proteomics_unknown_sample.csv": "sample_id,feature,value\nS1,IL6,3.2\nS77,IL6,4.0\n",
        "proteomics_inf.csv": "sample_id,feature,value\nS1,IL6,3.2\nS2,IL6,inf\n",
        "mutations_vaf_range.csv": "sample_id,gene,vaf,depth\nS1,PIGA,0.12,300\nS3,BCOR,-0.2,250\n",
        "mutations_negative_depth.csv": "sample_id,gene,vaf,depth\nS1,PIGA,0.12,300\n"
                                        "S3,BCOR,0.05,-250\n",
        "tcr_negative_count.csv": "sample_id,junction_aa,count\nS1,CASSLGQAYEQYF,12\n"
                                  "S2,CASSPDRGNTEAFF,-5\n",
        "tcr_productive_text.csv": "sample_id,junction_aa,count,productive\n"
                                   "S1,CASSLGQAYEQYF,12,true\nS2,CASSPDRGNTEAFF,5,maybe\n",
        "rna_counts_negative.csv": "gene,S1,S2,S3,S4\nIFI27,10,200,5,7\nMX1,3,-40,1,2\n",
        "rna_counts_unknown_sample.csv": "gene,S1,S2,S3,S4,S99\nIFI27,10,200,5,7,1\n"
                                         "MX1,3,40,1,2,1\n",
        # ---- study.toml --------------------------------------------------------------------
        "study_invalid.toml": "[study\nid = \"X\"\n",
    }


def _parquet() -> dict[str, bytes]:
    import polars as pl

    good = pl.DataFrame({"subject_id": ["P1", "P2"] * 40, "day": list(range(80)),
                         "analyte": ["ANC"] * 80, "value": [0.5] * 80, "unit": ["10^9/L"] * 80})
    buf = io.BytesIO()
    good.write_parquet(buf, compression="uncompressed")
    whole = buf.getvalue()
    typed = pl.DataFrame({"subject_id": ["P1", "P2"], "day": [3.0, 7.5], "analyte": ["ANC"] * 2,
                          "value": [0.5, 0.7], "unit": ["10^9/L"] * 2})
    buf2 = io.BytesIO()
    typed.write_parquet(buf2)
    return {"measurements_truncated.parquet": whole[: len(whole) // 2],
            "measurements_float_day.parquet": buf2.getvalue()}


def _excel() -> dict[str, bytes]:
    import xlsxwriter

    def book(write) -> bytes:
        buf = io.BytesIO()
        wb = xlsxwriter.Workbook(buf, {"in_memory": True})
        ws = wb.add_worksheet("labs")
        write(wb, ws)
        wb.close()
        return buf.getvalue()

    def merged(wb, ws) -> None:
        fmt = wb.add_format({"bold": True, "align": "center"})
        ws.merge_range("A1:E1", "Site 3 laboratory export (2025)", fmt)
        for c, v in enumerate(["subject_id", "day", "analyte", "value", "unit"]):
            ws.write(1, c, v)
        ws.write_row(2, 0, ["P1", 0, "ANC", 0.4, "10^9/L"])
        ws.write_row(3, 0, ["P2", 7, "PLT", 22, "10^9/L"])

    def plain(wb, ws) -> None:
        ws.write_row(0, 0, ["subject_id", "day", "response"])
        ws.write_row(1, 0, ["P1", 28, "PR"])
        ws.write_row(2, 0, ["P2", 28, "NR"])

    whole = book(plain)
    return {"measurements_merged_header.xlsx": book(merged),
            "responses_plain.xlsx": whole,
            "responses_truncated.xlsx": whole[: len(whole) * 2 // 3]}


def _h5ad(tmp: Path) -> dict[str, bytes]:
    import anndata as ad
    import numpy as np
    import pandas as pd

    def write(obs: pd.DataFrame, name: str) -> bytes:
        a = ad.AnnData(X=np.ones((len(obs), 3), dtype=np.float32), obs=obs)
        a.obs_names = [f"c{i}" for i in range(len(obs))]
        p = tmp / name
        a.write_h5ad(p)
        return p.read_bytes()

    good = write(pd.DataFrame({"subject_id": ["P1", "P2"] * 5, "day": [0, 28] * 5}), "a.h5ad")
    return {
        "single_cell_truncated.h5ad": good[: len(good) // 3],
        "single_cell_garbage.h5ad": b"\x89HDF\r\n\x1a\n" + b"\x00\xff" * 300,
        "single_cell_no_subject.h5ad": write(pd.DataFrame({"cell_type": ["T"] * 10}), "b.h5ad"),
        "single_cell_unknown_subject.h5ad": write(
            pd.DataFrame({"subject_id": ["P1", "Q7"] * 5, "day": [0, 28] * 5}), "c.h5ad"),
    }


# ---- hostile shapes: small files that declare huge tables ------------------------------------
def _hostile(tmp: Path) -> dict[str, bytes]:
    import zipfile

    import h5py

    # an .xlsx of a few KB whose sheet declares and uses the whole grid (16,384 x 1,048,576)
    src = zipfile.ZipFile(io.BytesIO(_excel()["responses_plain.xlsx"]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                # the declared grid, and one number in its last cell: the reader then
                # allocates every cell in between (549 GB)
                data = data.replace(b'<dimension ref="A1:C3"/>',
                                    b'<dimension ref="A1:XFD1048576"/>')
                data = data.replace(b"</sheetData>", b'<row r="1048576"><c r="XFD1048576">'
                                    b"<v>1</v></c></row></sheetData>")
                assert data.count(b"XFD1048576") == 2
            zinfo = zipfile.ZipInfo(info.filename, date_time=(2025, 1, 1, 0, 0, 0))
            out.writestr(zinfo, data, zipfile.ZIP_DEFLATED)
    files = {"responses_huge_dimension.xlsx": buf.getvalue()}

    # an .h5ad whose obs declares 10^9 cells: unwritten HDF5 chunks take no space
    p = tmp / "huge.h5ad"
    p.write_bytes(_h5ad(tmp)["single_cell_unknown_subject.h5ad"])
    with h5py.File(p, "r+") as fh:
        obs = fh["obs"]
        index = obs.attrs["_index"]
        for key in (index, "day"):
            attrs = dict(obs[key].attrs)
            dtype = obs[key].dtype
            del obs[key]
            ds = obs.create_dataset(key, shape=(10**9,), dtype=dtype, chunks=(2**16,),
                                    compression="gzip")
            for k, v in attrs.items():
                ds.attrs[k] = v
    files["single_cell_huge_obs.h5ad"] = p.read_bytes()
    return files


def gzip_bomb(path: Path, *, unpacked_bytes: int = 10**9) -> Path:
    """A .csv.gz of valid measurement rows that unpacks to `unpacked_bytes` (2.4 MB on disk for
    1 GB): one compressed block of rows, repeated as gzip members (RFC 1952 allows many)."""
    import gzip

    row = b"P1,7,ANC,0.9,10^9/L\n"
    block = row * ((1 << 20) // len(row))
    member = gzip.compress(block, compresslevel=9, mtime=0)
    with path.open("wb") as fh:
        fh.write(gzip.compress(MEAS.encode(), mtime=0))
        for _ in range(unpacked_bytes // len(block)):
            fh.write(member)
    return path


def wide_csv(path: Path, *, columns: int = 10**6) -> Path:
    """A measurements CSV whose header has `columns` columns (about 14 MB for 10^6)."""
    extra = ",".join(f"x{i}" for i in range(columns - 5))
    with path.open("w", encoding="utf-8") as fh:
        fh.write(MEAS.rstrip("\n") + "," + extra + "\n")
        fh.write("P1,0,ANC,0.4,10^9/L" + "," * (columns - 5) + "\n")
    return path


def _xpt(tmp: Path) -> dict[str, bytes]:
    import pandas as pd
    import pyreadstat

    dm = pd.DataFrame({"STUDYID": ["S"] * 3, "USUBJID": ["X-1", "X-2", "X-3"],
                       "AGE": [30.0, 40.0, 50.0], "SEX": ["M", "F", "F"],
                       "RFXSTDTC": ["2025-01-10", "2025-02-01", "2025-03-01"]})
    p = tmp / "dm.xpt"
    pyreadstat.write_xport(dm, str(p), table_name="DM")
    whole = p.read_bytes()
    cut = whole[: (len(whole) // 80 - 2) * 80]           # whole records, but the data are gone
    return {"sdtm_dm_truncated.xpt": whole[: len(whole) - 37],
            "sdtm_dm_cut_records.xpt": cut}


def main() -> None:
    import tempfile

    files: dict[str, str | bytes] = _text()
    with tempfile.TemporaryDirectory(prefix="robust_corpus_") as tmp:
        files |= (_parquet() | _excel() | _h5ad(Path(tmp)) | _xpt(Path(tmp))
                  | _hostile(Path(tmp)))
    for name, data in sorted(files.items()):
        path = HERE / name
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8", newline="")
        else:
            path.write_bytes(data)
    print(f"wrote {len(files)} files to {HERE}")


if __name__ == "__main__":
    main()
