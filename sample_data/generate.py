"""Seeded synthetic demo cohort shaped like NCT07139600 (CD7 CAR-T in r/r severe aplastic anaemia).

Every value written here is invented. The generator builds one study folder in the canonical data
model of DESIGN.md section 2 (patients, measurements, events, responses, samples, proteomics,
rna_counts, mutations, tcr, single_cell.h5ad with cell_receptors.tsv, flow/*.fcs) with planted, documented effects so that
the app's analyses have something true to find (sample_data/README.md lists them):

- blood counts follow modified-Camitta SAA criteria at baseline and NIH (Townsley 2017) response
  shapes afterwards; responses.csv is computed from the written counts with the NIH rule;
- CRS/ICANS are recorded per ASTCT 2019 and the daily vitals agree with the recorded grade;
- CAR-T expansion peaks on day 7-14 (higher in responders), CD7-negative T cells replace CD7+ T
  and NK cells (the CAR target), and the IFN-gamma axis stays on in non-responders.

Random streams are separate per output (`numpy.random.default_rng([seed, stream])`), so changing
`cells` never changes the CSV tables. Large cohorts are built with array operations only (no
Python loop over measurements or cells); loops run over patients, samples or analytes.

Run `python -m sample_data.generate --help`.
"""

from __future__ import annotations

import argparse
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["generate_study", "main", "CELL_TYPES", "TIMEPOINTS", "ISG_GENES"]

STUDY_ID = "NCT07139600-DEMO"

# Archetypes: best response and course. The first five patients always follow this order so the
# committed demo tells the story the README documents; later patients draw one at random.
_ARCH = ("CR", "PR", "PR_CR", "NR_HSCT", "NR")
_CR, _PR, _PR_CR, _NR_HSCT, _NR = range(5)
_ARCH_P = (0.25, 0.15, 0.20, 0.15, 0.25)  # about 60% responders

# Fixed facts for SAA-001..SAA-005 (the committed demo); NaN = none.
_DEMO = {
    "vsaa": [False, False, True, False, True],
    "pnh": [8.5, 4.2, 0.0, 2.1, 0.0],
    "crs_grade": [2, 1, 3, 1, 0],
    "crs_onset": [2, 3, 1, 4, 0],
    "crs_days": [5, 3, 7, 2, 0],
    # grade 2: 0 hypotension, 1 low-flow O2, 2 both; grade 3: 0 one vasopressor, 1 high-flow O2
    "crs_mode": [2, 0, 0, 0, 0],
    "icans_grade": [0, 0, 1, 0, 0],
    "icans_onset": [0, 0, 6, 0, 0],
    "icans_days": [0, 0, 2, 0, 0],
    "last_contact": [540, 452, 545, 480, 421],
    "hsct": [np.nan, np.nan, np.nan, 121, np.nan],
    "progression": [np.nan, np.nan, np.nan, np.nan, 268],
    "death": [np.nan, np.nan, np.nan, np.nan, 421],
    "bcor": [True, False, False, False, False],
    "bcorl1": [False, False, True, False, False],
    "dnmt3a": [False, False, False, True, True],
    "asxl1": [False, False, False, False, True],
}

TIMEPOINTS: tuple[tuple[str, int | None], ...] = (
    ("Screening", None), ("D14", 14), ("D28", 28), ("M3", 90), ("M6", 180), ("M12", 365),
)
# assay -> (tissue, sample-id suffix, timepoints)
_ASSAYS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "proteomics": ("blood", "PROT", ("Screening", "D14", "D28", "M3", "M6", "M12")),
    "rna": ("blood", "RNA", ("Screening", "D14", "D28", "M3", "M6", "M12")),
    "mutations": ("marrow", "MUT", ("Screening", "D14", "D28", "M3", "M6", "M12")),
    "tcr": ("blood", "TCR", ("Screening", "D14", "D28", "M3", "M6", "M12")),
    "scrna": ("marrow", "SCRNA", ("Screening", "D28", "M3")),
    "flow_fcs": ("blood", "FLOW", ("Screening", "D28")),
}

CELL_TYPES = ("CD4 T", "CD8 TEM", "NK", "B", "Monocyte", "HSPC", "Erythroid progenitor", "CAR-T")

ISG_GENES = ("IFI27", "IFI44L", "ISG15", "RSAD2", "MX1", "OAS1", "IFIT1", "IFIT3", "STAT1",
             "GBP1", "CXCL10", "IFNG")
_ISG_EXTRA = ("IFI6", "IFI44", "IFIT2", "OAS2", "OAS3", "MX2", "HERC5", "USP18", "XAF1", "EPSTI1",
              "CXCL9", "CXCL11", "GBP5", "IRF7", "IFITM1", "BST2", "LY6E")

# Real HGNC symbols used for bulk and single-cell RNA; the rest of the gene space is GENE0001...
_REAL_GENES = tuple(dict.fromkeys("""
RPL3 RPL4 RPL5 RPL6 RPL7 RPL7A RPL8 RPL9 RPL10 RPL10A RPL11 RPL12 RPL13 RPL13A RPL14 RPL15 RPL17
RPL18 RPL18A RPL19 RPL21 RPL22 RPL23 RPL23A RPL24 RPL26 RPL27 RPL27A RPL28 RPL29 RPL30 RPL31 RPL32
RPL34 RPL35 RPL35A RPL36 RPL37 RPL37A RPL38 RPL39 RPL41 RPLP0 RPLP1 RPLP2 RPS2 RPS3 RPS3A RPS4X
RPS5 RPS6 RPS7 RPS8 RPS9 RPS10 RPS11 RPS12 RPS13 RPS14 RPS15 RPS15A RPS16 RPS17 RPS18 RPS19 RPS20
RPS21 RPS23 RPS24 RPS25 RPS26 RPS27 RPS27A RPS28 RPS29 RPSA
MT-ND1 MT-ND2 MT-CO1 MT-CO2 MT-ATP8 MT-ATP6 MT-CO3 MT-ND3 MT-ND4L MT-ND4 MT-ND5 MT-ND6 MT-CYB
MALAT1 ACTB GAPDH B2M TMSB4X TMSB10 EEF1A1 TPT1 FTL FTH1 PTMA HSP90AB1 UBC UBB PPIA PFN1 CFL1
MYL6 ACTG1 H3-3B NEAT1 LDHA ENO1 PGK1 ALDOA TPI1 YWHAZ SRSF3 HNRNPA1 NPM1 NACA EIF1 OAZ1 SERF2
COX4I1 ATP5F1E UQCRH NDUFA4 RACK1 SH3BGRL3 ARHGDIB CORO1A LCP1 PTPRC VIM S100A4 S100A6 S100A10
S100A11 LGALS1 ANXA1 ANXA2 CD52 CD74 HLA-A HLA-B HLA-C HLA-E HLA-F HLA-DRA HLA-DRB1 HLA-DPA1
HLA-DPB1 HLA-DQA1 HLA-DQB1 HLA-DMA HLA-DMB
CD3E CD3D CD3G CD2 CD5 CD6 CD7 CD247 CD28 CD27 IL7R CCR7 SELL LEF1 TCF7 CD4 CD40LG FOXP3 IL2RA
CTLA4 ICOS CD8A CD8B GZMA GZMB GZMH GZMK GZMM PRF1 NKG7 GNLY CCL5 CST7 KLRB1 KLRD1 KLRG1 KLRC1
KLRF1 FCGR3A NCAM1 NCR1 TYROBP FCER1G XCL1 XCL2 CX3CR1 TBX21 EOMES PDCD1 LAG3 HAVCR2 TIGIT TOX
IFNG TNF CD69 FOS JUN JUNB DUSP1 ZFP36 IER2 KLF2 S1PR1 TRAC TRBC1 TRBC2 TRDC TRGC1 TRGC2 MKI67
TOP2A STMN1 TUBB HMGB2 TYMS PCNA CCNB1 CDK1
MS4A1 CD79A CD79B CD19 CD22 BANK1 PAX5 IGHM IGHD IGKC IGLC2 TCL1A FCER2 VPREB3 BLK FCRLA
CD14 LYZ FCN1 VCAN CSF1R CD68 CST3 LST1 AIF1 MNDA CTSS SAT1 S100A8 S100A9 S100A12 ITGAM CD163
MS4A7 FCGR1A CEBPB CEBPD LGALS3 PSAP TYMP
CD34 KIT PROM1 SPINK2 CRHBP HLF MECOM GATA2 MEIS1 HOPX AVP FLT3 MYB CD38 SOX4 EGFL7 NPR3 PRSS57
SMIM24 CYTL1 ERG HOXA9 MLLT3 THY1
HBB HBA1 HBA2 HBD GATA1 KLF1 TFRC ALAS2 GYPA CA1 AHSP HBM SLC4A1 EPOR TAL1 PKLR SPTA1 TRIM58
BLVRB PRDX2 PPBP PF4 ITGA2B GP9 GP1BB TUBB1
IFI27 IFI44L IFI44 ISG15 RSAD2 MX1 MX2 OAS1 OAS2 OAS3 OASL IFIT1 IFIT2 IFIT3 IFIT5 STAT1 STAT2
IRF1 IRF7 IRF9 GBP1 GBP2 GBP4 GBP5 CXCL9 CXCL10 CXCL11 IFI6 IFITM1 IFITM2 IFITM3 IFI35 IFIH1 RIGI
DDX60 HERC5 HERC6 USP18 XAF1 SAMD9L EPSTI1 PLSCR1 BST2 LY6E SP110 SP100 PARP9 PARP14 DTX3L
TRIM22 IDO1 SOCS1 JAK2 CIITA APOL6 WARS1 UBE2L6 PSMB8 PSMB9 TAP1
IL6 IL10 IL2 IL1B IL18 IL15 IL7 CSF2 CSF3 CCL2 CCL3 CCL4 CXCL8 IL1RN TNFSF10 TGFB1 FLT3LG KITLG
THPO EPO MPL CSF3R CXCR4 CCR5 CXCR3 IL2RB IL2RG IL15RA JAK1 JAK3 STAT3 STAT4 STAT5A STAT5B
TNFRSF9 TNFRSF4 TNFRSF18 CD274 PDCD1LG2
PIGA BCOR BCORL1 DNMT3A ASXL1 TET2 TP53 RUNX1 SF3B1 U2AF1 SRSF2 CALR CBL KRAS NRAS IDH1 IDH2
EZH2 STAG2 ZRSR2 PHF6 ETV6 CEBPA WT1 SETBP1 TERT DKC1 RTEL1 CTC1 NHP2 NOP10 SBDS FANCA FANCC
FANCG PKM PGAM1 GPI IDH3A SDHA SDHB CS ACO2 FH MDH2
MYC MAX SP1 YY1 CTCF RAD21 SMC1A SMC3 NIPBL BRD4 EP300 CREBBP KMT2A KMT2D ARID1A SMARCA4 CHD4
HDAC1 HDAC2 SIN3A NCOR1 NCOR2 NR3C1 BCL6 BCL2 MCL1 BCL2L1 BAX BAK1 CASP3 CASP8 FAS FASLG XIAP
BIRC5 CDKN1A CDKN2A MDM2 ATM ATR CHEK1 CHEK2 BRCA1 BRCA2 PALB2 RAD51 XRCC1 PARP1 MSH2 MSH6 MLH1
PMS2 POLE POLD1 LIG4 XRCC4 PRKDC NBN MRE11 RAD50 H2AX TOP1 TOP2B EGFR ERBB2 MET ALK ROS1 RET
BRAF PIK3CA PTEN AKT1 MTOR TSC1 TSC2 STK11 KEAP1 NFE2L2 VHL HIF1A EPAS1 NOTCH1 NOTCH2 FBXW7
CTNNB1 APC AXIN1 SMAD4 TGFBR2 CDH1 RB1 E2F1 CCND1 CCND2 CCND3 CDK4 CDK6 CCNE1 LMO2 LYL1 FLI1
SPI1 IKZF1 IKZF3 EBF1 POU2AF1 IRF4 IRF8 PRDM1 XBP1 BATF BACH2 ID2 ID3 ZEB2 RUNX3 NFKB1 NFKBIA
RELA RELB REL TRAF1 TRAF3 BIRC3 TNFAIP3 CARD11 MALT1 BCL10 MYD88 IRAK1 IRAK4 TLR2 TLR4 TLR7
TLR9 CD36 ITGB2 ITGAL ITGA4 ITGB1 ICAM1 VCAM1 SELPLG CD44 CD47 CD58 CD59 CD55 CD46 CR1 CR2 C3
C5 CFH CFB SERPING1 APOE TF HP ORM1 SAA1 VWF PECAM1 CDH5 KDR TEK ANGPT1 ANGPT2 VEGFA PDGFB
PDGFRA PDGFRB COL1A1 COL1A2 COL3A1 FN1 SPARC LUM DCN CXCL12 LEPR PPARG LPL FABP4
""".split()))

# Marker genes per single-cell type: clearly higher in their type (a marker test should find them).
_MARKERS: dict[str, tuple[str, ...]] = {
    "CD4 T": ("CD3E", "CD3D", "CD3G", "CD4", "IL7R", "CCR7", "LEF1", "TCF7", "CD40LG", "CD2", "CD5",
              "CD6", "CD28", "TRAC", "TRBC2", "SELL"),
    "CD8 TEM": ("CD3E", "CD3D", "CD8A", "CD8B", "GZMK", "GZMH", "GZMA", "CCL5", "CST7", "CD2",
                "TRAC", "TRBC1", "KLRG1", "NKG7", "EOMES"),
    "NK": ("NKG7", "GNLY", "PRF1", "GZMB", "KLRD1", "KLRF1", "FCGR3A", "NCAM1", "NCR1", "TYROBP",
           "FCER1G", "XCL1", "XCL2", "KLRC1"),
    "B": ("MS4A1", "CD79A", "CD79B", "CD19", "BANK1", "PAX5", "IGHM", "IGKC", "TCL1A", "CD22",
          "VPREB3", "FCER2", "HLA-DRA", "CD74"),
    "Monocyte": ("CD14", "LYZ", "FCN1", "VCAN", "S100A8", "S100A9", "S100A12", "CSF1R", "CD68",
                 "CST3", "LST1", "AIF1", "MNDA", "CTSS"),
    "HSPC": ("CD34", "KIT", "PROM1", "SPINK2", "CRHBP", "HLF", "MECOM", "GATA2", "MEIS1", "HOPX",
             "AVP", "FLT3", "PRSS57", "SMIM24", "CYTL1", "EGFL7"),
    "Erythroid progenitor": ("HBB", "HBA1", "HBA2", "GATA1", "KLF1", "TFRC", "ALAS2", "GYPA",
                             "CA1", "AHSP", "HBM", "SLC4A1", "EPOR", "TAL1", "BLVRB", "PRDX2"),
    "CAR-T": ("CAR", "CD3E", "CD3D", "CD8A", "GZMB", "PRF1", "NKG7", "GNLY", "IFNG", "MKI67",
              "TOP2A", "TNFRSF9", "HAVCR2", "LAG3", "STMN1"),
}
# CD7 is expressed by T and NK cells before infusion; the CAR kills CD7+ cells, so afterwards the
# remaining T/NK cells are CD7-low and CAR-T cells are CD7-negative.
_CD7_TYPES = ("CD4 T", "CD8 TEM", "NK")

# Olink-style proteins: (feature = HGNC symbol, UniProt accession, panel).
_INFL = "Olink Target 96 Inflammation"
_IO = "Olink Target 96 Immuno-Oncology"
_HEME = "Custom haematopoiesis (synthetic)"
_PROTEINS: tuple[tuple[str, str, str], ...] = tuple(
    [(g, u, _INFL) for g, u in (
        ("CXCL8", "P10145"), ("VEGFA", "P15692"), ("CD8A", "P01732"), ("CCL7", "P80098"),
        ("GDNF", "P39905"), ("CDCP1", "Q9H5V8"), ("CD244", "Q9BZW8"), ("IL7", "P13232"),
        ("TNFRSF11B", "O00300"), ("TGFB1", "P01137"), ("PLAU", "P00749"), ("IL6", "P05231"),
        ("IL17C", "Q9P0M4"), ("CCL2", "P13500"), ("IL17A", "Q16552"), ("CXCL11", "O14625"),
        ("AXIN1", "O15169"), ("TNFSF10", "P50591"), ("IL20RA", "Q9UHF4"), ("CXCL9", "Q07325"),
        ("CST5", "P28325"), ("IL2RB", "P14784"), ("IL1A", "P01583"), ("OSM", "P13725"),
        ("IL2", "P60568"), ("CXCL1", "P09341"), ("TSLP", "Q969D9"), ("CCL4", "P13236"),
        ("CD6", "P30203"), ("KITLG", "P21583"), ("IL18", "Q14116"), ("SLAMF1", "Q13291"),
        ("TGFA", "P01135"), ("CCL13", "Q99616"), ("CCL11", "P51671"), ("TNFSF14", "O43557"),
        ("FGF23", "Q9GZV9"), ("IL10RA", "Q13651"), ("FGF5", "P12034"), ("MMP1", "P03956"),
        ("LIFR", "P42702"), ("FGF21", "Q9NSA1"), ("CCL19", "Q99731"), ("IL15RA", "Q13261"),
        ("IL10RB", "Q08334"), ("IL22RA1", "Q8N6P7"), ("IL18R1", "Q13478"), ("CD274", "Q9NZQ7"),
        ("NGF", "P01138"), ("CXCL5", "P42830"), ("TNFSF11", "O14788"), ("HGF", "P14210"),
        ("IL12B", "P29460"), ("IL24", "Q13007"), ("IL13", "P35225"), ("ARTN", "Q5T4W7"),
        ("MMP10", "P09238"), ("IL10", "P22301"), ("TNF", "P01375"), ("CCL23", "P55773"),
        ("CD5", "P06127"), ("CCL3", "P10147"), ("FLT3LG", "P49771"), ("CXCL6", "P80162"),
        ("CXCL10", "P02778"), ("EIF4EBP1", "Q13541"), ("IL20", "Q9NYY1"), ("SIRT2", "Q8IXJ6"),
        ("CCL28", "Q9NRJ3"), ("DNER", "Q8NFT8"), ("S100A12", "P80511"), ("CD40", "P25942"),
        ("IL33", "O95760"), ("IFNG", "P01579"), ("FGF19", "O95750"), ("IL4", "P05112"),
        ("LIF", "P15018"), ("NRTN", "Q99748"), ("CCL8", "P80075"), ("CASP8", "Q14790"),
        ("CCL25", "O15444"), ("CX3CL1", "P78423"), ("TNFRSF9", "Q07011"), ("NTF3", "P20783"),
        ("TNFSF12", "O43508"), ("CCL20", "P78556"), ("SULT1A1", "P50225"), ("STAMBP", "O95630"),
        ("IL5", "P05113"), ("ADA", "P00813"), ("LTA", "P01374"), ("CSF1", "P09603"),
    )]
    + [(g, u, _IO) for g, u in (
        ("GZMA", "P12544"), ("GZMB", "P10144"), ("GZMH", "P20718"), ("LAG3", "P18627"),
        ("PDCD1", "Q15116"), ("KLRD1", "Q13241"),
    )]
    + [("THPO", "P40225", _HEME), ("EPO", "P01588", _HEME)]
)
# Low-abundance assays: their baseline sits near the LOD, so a share of values fall below it.
_LOW_PROTEINS = {"IL2", "IL4", "IL5", "IL13", "IL33", "IL20", "IL22RA1", "IL24", "IL17A", "ARTN",
                 "NRTN", "TSLP", "FGF5", "IL1A"}

_SCREEN = -999  # placeholder in a visit grid, replaced by each patient's screening day


# ---------------------------------------------------------------------------------------------
# cohort: one row per patient plus the hidden parameters every other table is drawn from


@dataclass(frozen=True)
class _Cohort:
    ids: np.ndarray  # (P,) subject ids
    arch: np.ndarray  # (P,) archetype index into _ARCH
    responder: np.ndarray
    vsaa: np.ndarray
    screen: np.ndarray  # screening day (-14..-10)
    last: np.ndarray  # last_contact_day (== death_day when dead)
    death: np.ndarray  # float, NaN = alive
    hsct: np.ndarray  # float, NaN = none
    progression: np.ndarray  # float, NaN = none
    crs_grade: np.ndarray
    crs_onset: np.ndarray
    crs_end: np.ndarray
    crs_mode: np.ndarray
    icans_grade: np.ndarray
    icans_onset: np.ndarray
    icans_end: np.ndarray
    pnh: np.ndarray
    infusion: np.ndarray  # datetime64[D]
    par: dict[str, np.ndarray]  # trajectory parameters, one value per patient
    frame: pl.DataFrame  # patients.csv

    @property
    def n(self) -> int:
        return len(self.ids)


def _rng(seed: int, stream: int) -> np.random.Generator:
    # One stream per output, so that e.g. a different `cells` leaves every CSV unchanged.
    return np.random.default_rng([seed, stream])


def _pick(table: Sequence[tuple[float, float]], idx: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """Uniform draw per patient from the (low, high) range of its archetype."""
    lo, hi = np.asarray(table, dtype=float).T
    return rng.uniform(lo[idx], hi[idx])


def _make_cohort(n: int, seed: int) -> _Cohort:
    rng = _rng(seed, 1)
    k = min(n, 5)
    ids = np.array([f"SAA-{i + 1:03d}" for i in range(n)])
    arch = np.concatenate([np.arange(k), rng.choice(5, size=n - k, p=_ARCH_P)]).astype(int)
    responder = arch <= _PR_CR

    def demo(key: str, rest: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(_DEMO[key][:k], dtype=rest.dtype), rest[k:]])

    vsaa = demo("vsaa", rng.random(n) < 0.35)
    pnh = demo("pnh", np.where(rng.random(n) < 0.5, np.round(rng.uniform(0.5, 15, n), 1), 0.0))

    # Course: follow-up, HSCT, progression, death.
    last = rng.integers(390, 546, n).astype(float)
    hsct = np.where(arch == _NR_HSCT, rng.integers(100, 161, n), np.nan)
    nr_plain = arch == _NR
    prog = np.where(nr_plain & (rng.random(n) < 0.45), rng.integers(180, 331, n), np.nan)
    die = (nr_plain & (rng.random(n) < 0.35)) | ((arch == _NR_HSCT) & (rng.random(n) < 0.1))
    death = np.where(die, rng.integers(220, 460, n), np.nan)
    death = np.where(die & ~np.isnan(prog), np.maximum(death, prog + 40), death)
    death = np.where(die & ~np.isnan(hsct), np.maximum(death, hsct + 60), death)
    last = np.where(die, death, last)
    last = demo("last_contact", last)
    hsct, prog, death = demo("hsct", hsct), demo("progression", prog), demo("death", death)

    # CRS / ICANS (ASTCT 2019 grades).
    crs_grade = demo("crs_grade", rng.choice(4, size=n, p=[0.2, 0.4, 0.32, 0.08]))
    crs_onset = demo("crs_onset", np.where(crs_grade > 0, rng.integers(1, 6, n), 0))
    crs_days = demo("crs_days", np.where(crs_grade > 0, rng.integers(2, 8, n), 0))
    crs_end = np.where(crs_grade > 0, crs_onset + crs_days - 1, 0)
    crs_mode = demo("crs_mode", np.where(crs_grade == 2, rng.integers(0, 3, n),
                                         rng.integers(0, 2, n)))
    icans = (crs_grade >= 2) & (rng.random(n) < 0.12)
    icans_grade = demo("icans_grade", np.where(icans, rng.integers(1, 3, n), 0))
    icans_onset = demo("icans_onset", np.where(icans_grade > 0, crs_onset + rng.integers(2, 5, n), 0))
    icans_days = demo("icans_days", np.where(icans_grade > 0, rng.integers(1, 4, n), 0))
    icans_end = np.where(icans_grade > 0, icans_onset + icans_days - 1, 0)

    screen = rng.integers(-14, -9, n)
    # Infusions spread over 2025 in subject order.
    offsets = np.sort(rng.integers(0, 330, n))
    infusion = np.datetime64("2025-01-13") + offsets.astype("timedelta64[D]")

    par = _trajectory_params(arch, vsaa, rng)
    frame = pl.DataFrame({
        "subject_id": ids,
        "age": rng.integers(18, 66, n),
        "sex": rng.choice(np.array(["M", "F"]), n),
        "diagnosis": np.where(vsaa, "vSAA", "SAA"),
        "infusion_date": [str(d) for d in infusion],
        "dose_per_kg": rng.integers(10, 21, n) * 100_000,
        "weight_kg": np.round(rng.uniform(45, 92, n), 1),
        "prior_therapy": rng.choice(np.array([
            "hATG + CsA; eltrombopag", "hATG + CsA", "rATG + CsA; eltrombopag",
            "hATG + CsA; eltrombopag; romiplostim", "CsA; hATG + CsA; eltrombopag",
        ]), n),
        "pnh_clone_pct": pnh,
        "disease_duration_months": rng.integers(8, 97, n),
        "marrow_cellularity_pct": rng.integers(5, 21, n),
        "last_contact_day": last.astype(int),
        "death_day": _nullable(death),
        "progression_day": _nullable(prog),
        "hsct_day": _nullable(hsct),
        "response_override": pl.Series([None] * n, dtype=pl.String),
    })
    return _Cohort(ids, arch, responder, vsaa, screen, last, death.astype(float),
                   hsct.astype(float), prog.astype(float), crs_grade, crs_onset, crs_end,
                   crs_mode, icans_grade, icans_onset, icans_end, pnh, infusion, par, frame)


def _nullable(x: np.ndarray) -> pl.Series:
    x = np.asarray(x, dtype=float)
    return pl.Series([None if np.isnan(v) else int(v) for v in x], dtype=pl.Int64)


def _trajectory_params(arch: np.ndarray, vsaa: np.ndarray,
                       rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-patient levels and timings for counts, CAR-T kinetics, cytokines and phenotypes.

    Archetype ranges (CR, PR, PR_CR, NR_HSCT, NR) are chosen so that NIH categories computed from
    the noisy counts land where the archetype says: CR plateaus sit well above ANC 1.0 / HGB 100 /
    PLT 100; PR platelets stay under 100; non-responders stay under ANC 0.5 and PLT 20.
    """
    n = len(arch)
    p: dict[str, np.ndarray] = {}
    u = rng.uniform
    # Baseline (modified Camitta severe): ANC <0.5 (vSAA <0.2), PLT <20, RETIC <60.
    p["anc_base"] = np.where(vsaa, u(0.06, 0.17, n), u(0.22, 0.42, n))
    p["plt_base"] = u(6, 15, n)
    p["retic_base"] = u(8, 38, n)
    p["hgb_base"] = u(72, 84, n)
    p["alc_base"] = u(0.8, 1.6, n)
    p["amc_base"] = u(0.03, 0.14, n)

    p["anc_plat"] = _pick([(1.7, 3.0), (0.8, 1.3), (1.6, 2.4), (0.1, 0.35), (0.08, 0.3)], arch, rng)
    p["anc_t50"] = np.where(arch <= _PR_CR, u(12, 19, n), u(14, 20, n))
    p["anc_w"] = u(3, 5, n)
    p["amc_plat"] = np.where(arch <= _PR_CR, u(0.3, 0.6, n), u(0.04, 0.14, n))

    p["plt_plat"] = _pick([(125, 220), (35, 72), (130, 190), (5, 14), (4, 13)], arch, rng)
    p["plt_mid"] = np.where(arch == _PR_CR, u(32, 50, n), p["plt_plat"])
    p["plt_t50a"] = _pick([(27, 36), (30, 42), (27, 36), (20, 30), (20, 30)], arch, rng)
    p["plt_t50b"] = np.where(arch == _PR_CR, u(112, 128, n), p["plt_t50a"])
    p["plt_wa"] = u(4, 7, n)
    p["plt_wb"] = u(10, 14, n)

    p["hgb_plat"] = _pick([(120, 138), (92, 106), (116, 130), (70, 82), (68, 80)], arch, rng)
    p["hgb_mid"] = np.where(arch == _PR_CR, u(88, 96, n), p["hgb_plat"])
    p["hgb_t50a"] = _pick([(45, 58), (48, 62), (45, 58), (30, 40), (30, 40)], arch, rng)
    p["hgb_t50b"] = np.where(arch == _PR_CR, u(120, 135, n), p["hgb_t50a"])

    p["retic_plat"] = _pick([(75, 110), (62, 90), (72, 100), (6, 25), (5, 22)], arch, rng)
    p["alc_plat"] = u(0.6, 1.3, n)
    p["alc_expand"] = np.where(arch <= _PR_CR, u(3.0, 6.0, n), u(1.4, 2.4, n))
    # Donor graft after allogeneic HSCT.
    p["donor_anc"], p["donor_plt"] = u(2.0, 3.5, n), u(150, 250, n)
    p["donor_hgb"], p["donor_retic"] = u(112, 130, n), u(50, 90, n)

    # CAR-T cellular kinetics: rise to Tmax (day 7, 10 or 14), then biphasic decay.
    p["car_peak"] = 10 ** np.where(arch <= _PR_CR, u(4.1, 4.9, n), u(3.0, 3.7, n))
    p["car_tmax"] = rng.choice(np.array([7.0, 10.0, 14.0]), n, p=[0.3, 0.5, 0.2])
    p["car_slope"] = u(0.3, 0.45, n)  # log10 per day on the way up
    p["car_f"] = u(0.9, 0.96, n)  # share of the fast-decaying (effector) phase
    p["car_k1"] = np.log(2) / u(4, 8, n)
    p["car_k2"] = np.log(2) / np.where(arch <= _PR_CR, u(40, 130, n), u(20, 45, n))
    # Demo: SAA-002's CAR-T fall below the LLOQ by M12 (loss of persistence in a responder).
    if n >= 2:
        p["car_k2"][1] = np.log(2) / 30.0
    p["car_pct_peak"] = np.where(arch <= _PR_CR, u(18, 40, n), u(10, 16, n))
    # Immunophenotype.
    p["cd7neg_base"], p["cd7neg_plat"] = u(3, 8, n), u(62, 90, n)
    p["nk_base"], p["nk_nadir"] = u(40, 150, n), u(0.5, 3, n)
    p["nk_rec"], p["nk_trec"] = u(0.3, 0.7, n), u(200, 300, n)
    p["b_base"], p["b_rec"] = u(30, 120, n), u(0.5, 1.2, n)
    p["t_frac"] = u(0.62, 0.76, n)
    # Cytokines / chemistry baselines.
    p["il6"], p["ifng"], p["il10"] = u(2, 6, n), u(4, 14, n), u(2, 6, n)
    p["il2"], p["tnfa"], p["il2ra"] = u(0.5, 2, n), u(3, 8, n), u(800, 2000, n)
    p["crp"], p["ferritin"], p["ldh"] = u(2, 8, n), u(1200, 4000, n), u(170, 250, n)
    p["ifng_late"] = np.where(arch <= _PR_CR, u(0.4, 0.6, n), u(3, 5, n))
    return p


# ---------------------------------------------------------------------------------------------
# measurements


def _sig(t: np.ndarray, t50: np.ndarray | float, width: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(t - t50) / width))


def _col(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=float)[:, None]


def _grid(days: Sequence[int], screen: np.ndarray) -> np.ndarray:
    d = np.asarray(days)[None, :]
    return np.where(d == _SCREEN, screen[:, None], d).astype(np.int64)


def _recovery(t: np.ndarray, base: np.ndarray, mid: np.ndarray, plat: np.ndarray,
              t50a: np.ndarray, t50b: np.ndarray, wa: np.ndarray | float,
              wb: np.ndarray | float, nadir: float) -> np.ndarray:
    """Log-scale path: baseline, lymphodepletion dip (day ~4), one or two sigmoid recoveries."""
    post = t > 0
    lb, lm, lp = np.log(_col(base)), np.log(_col(mid)), np.log(_col(plat))
    sa = _sig(t, _col(t50a), wa if np.isscalar(wa) else _col(wa)) * post
    sb = _sig(t, _col(t50b), wb if np.isscalar(wb) else _col(wb)) * post
    dip = nadir * np.exp(-0.5 * ((t - 4.0) / 3.5) ** 2)
    return lb + (lm - lb) * sa + (lp - lm) * sb - dip


def _after_hsct(c: _Cohort, t: np.ndarray, y: np.ndarray, donor: np.ndarray,
                delay: float, width: float, dip: float) -> np.ndarray:
    """Conditioning dip then donor engraftment (log scale) from hsct_day on."""
    h = _col(c.hsct)
    s = t - h
    with np.errstate(invalid="ignore"):
        after = s >= 0
    new = y + (np.log(_col(donor)) - y) * _sig(s, delay, width) \
        - dip * np.exp(-0.5 * ((s - 8.0) / 4.0) ** 2)
    return np.where(after, new, y)


def _car_level(c: _Cohort, t: np.ndarray) -> np.ndarray:
    """CAR-T level relative to its peak (0 before infusion)."""
    p = c.par
    tm = _col(p["car_tmax"])
    rise = 10.0 ** (-_col(p["car_slope"]) * (tm - t))
    dt_ = np.maximum(t - tm, 0)
    f = _col(p["car_f"])
    decay = f * np.exp(-_col(p["car_k1"]) * dt_) + (1 - f) * np.exp(-_col(p["car_k2"]) * dt_)
    return np.where(t <= 0, 0.0, np.where(t < tm, rise, decay))


def _alc_log(c: _Cohort, t: np.ndarray) -> np.ndarray:
    p = c.par
    lb = np.log(_col(p["alc_base"]))
    y = lb - np.log(10) * np.exp(-0.5 * ((t - 1.0) / 2.5) ** 2)  # flu/cy lymphodepletion
    y = y + np.log(_col(p["alc_expand"])) * np.exp(-0.5 * ((t - _col(p["car_tmax"])) / 5.0) ** 2)
    return y + (np.log(_col(p["alc_plat"])) - lb) * _sig(t, 30.0, 10.0) * (t > 0)


class _Panel:
    """Collects long rows for one panel on one visit grid."""

    def __init__(self, c: _Cohort, panel: str, days: Sequence[int], *, stop_at_hsct: bool) -> None:
        self.c, self.panel = c, panel
        self.T = _grid(days, c.screen)
        self.t = self.T.astype(float)
        mask = self.T <= c.last[:, None]
        if stop_at_hsct:
            with np.errstate(invalid="ignore"):
                mask &= ~(self.T >= c.hsct[:, None])
        self.mask = mask
        self.frames: list[pl.DataFrame] = []

    def add(self, analyte: str, unit: str, values: np.ndarray, *,
            lloq: float | None = None) -> None:
        pi, ji = np.nonzero(self.mask)
        self.frames.append(pl.DataFrame({
            "subject_id": self.c.ids[pi],
            "day": self.T[pi, ji],
            "analyte": np.full(len(pi), analyte),
            "value": values[pi, ji].astype(float),
            "unit": np.full(len(pi), unit),
            "panel": np.full(len(pi), self.panel),
            "lloq": np.full(len(pi), np.nan if lloq is None else float(lloq)),
        }))


_EARLY = [0, 1, 2, 3, 4, 5, 6, 7, 10, 14, 17, 21, 28]
_CBC_DAYS = ([_SCREEN, -5, -4, -3] + _EARLY + list(range(35, 90, 7)) + [60, 90]
             + list(range(104, 180, 14)) + [180]
             + [210, 240, 270, 300, 330, 365, 395, 425, 455, 485, 515, 545])
_CBC_DAYS = sorted(set(_CBC_DAYS), key=lambda d: (d != _SCREEN, d))
_CHEM_DAYS = [_SCREEN, -5, 0, 1, 2, 3, 4, 5, 6, 7, 10, 14, 21, 28, 60, 90, 180, 270, 365]
_CYTO_DAYS = [-5, 0, 1, 2, 3, 4, 5, 6, 7, 10, 14, 21, 28, 90, 180, 365]
_CAR_DAYS = [0, 4, 7, 10, 14, 21, 28, 60, 90, 180, 270, 365]
_PHENO_DAYS = [_SCREEN, 0, 7, 14, 28, 60, 90, 180, 270, 365]
_VITAL_DAYS = [_SCREEN, -5, -3, -1] + list(range(0, 15))
ASSESSMENT_DAYS = (28, 90, 180, 365)
_CYTO_MAG = {  # fold over baseline at the CRS peak, by CRS grade 0..3
    "IL6": (2, 8, 25, 80), "IFNG": (3, 8, 20, 50), "IL10": (1.5, 4, 8, 15),
    "IL2": (1.2, 1.5, 2, 3), "TNFA": (1.2, 1.5, 2, 3), "IL2RA": (1.5, 3, 5, 8),
    "CRP": (3, 12, 30, 50), "FERRITIN": (1.2, 2, 3, 5), "LDH": (1.1, 1.3, 1.5, 2.0),
}


def _noisy(rng: np.random.Generator, y_log: np.ndarray, sd: float) -> np.ndarray:
    return np.exp(y_log + rng.normal(0.0, sd, y_log.shape))


def _cbc(c: _Cohort, rng: np.random.Generator) -> pl.DataFrame:
    p, P = c.par, _Panel(c, "cbc", _CBC_DAYS, stop_at_hsct=False)
    t = P.t
    pre = t <= 0
    nr = ~c.responder[:, None]
    with np.errstate(invalid="ignore"):
        before_hsct = ~(t >= _col(c.hsct))
    # Caps keep the documented truths whatever the noise does: severe counts at baseline, and
    # non-responders under ANC 0.5 / PLT 20 until HSCT.

    y = _recovery(t, p["anc_base"], p["anc_plat"], p["anc_plat"], p["anc_t50"], p["anc_t50"],
                  p["anc_w"], p["anc_w"], nadir=np.log(6))
    y = _after_hsct(c, t, y, p["donor_anc"], 16, 3, dip=2.0)
    anc = _noisy(rng, y, 0.12)
    cap = np.where(pre, _col(np.where(c.vsaa, 0.18, 0.45)), np.inf)
    cap = np.minimum(cap, np.where(nr & before_hsct, 0.45, np.inf))
    anc = np.minimum(anc, cap)
    anc = np.maximum(np.round(anc, 2), 0.01)

    y = _recovery(t, p["plt_base"], p["plt_mid"], p["plt_plat"], p["plt_t50a"], p["plt_t50b"],
                  p["plt_wa"], p["plt_wb"], nadir=0.4)
    y = _after_hsct(c, t, y, p["donor_plt"], 20, 4, dip=1.0)
    plt_ = np.minimum(_noisy(rng, y, 0.1), np.where(pre | (nr & before_hsct), 18, np.inf))
    plt_ = np.maximum(np.round(plt_), 1)

    y = _recovery(t, p["hgb_base"], p["hgb_mid"], p["hgb_plat"], p["hgb_t50a"], p["hgb_t50b"],
                  10.0, 10.0, nadir=0.0)
    y = _after_hsct(c, t, y, p["donor_hgb"], 40, 10, dip=0.08)
    hgb = np.round(_noisy(rng, y, 0.04))

    y = _recovery(t, p["retic_base"], p["retic_plat"], p["retic_plat"], p["plt_t50a"] - 5,
                  p["plt_t50a"] - 5, 6.0, 6.0, nadir=0.8)
    y = _after_hsct(c, t, y, p["donor_retic"], 25, 5, dip=1.5)
    retic = np.minimum(_noisy(rng, y, 0.12), np.where(pre, 45, np.inf))
    retic = np.maximum(np.round(retic, 1), 0.5)

    alc = np.maximum(np.round(_noisy(rng, _alc_log(c, t), 0.12), 2), 0.01)
    y = _recovery(t, p["amc_base"], p["amc_plat"], p["amc_plat"], p["anc_t50"], p["anc_t50"],
                  p["anc_w"], p["anc_w"], nadir=np.log(4))
    amc = np.maximum(np.round(_noisy(rng, y, 0.15), 2), 0.01)
    wbc = np.round(anc + alc + amc + rng.uniform(0.01, 0.06, t.shape), 2)

    for name, v in (("WBC", wbc), ("ANC", anc), ("ALC", alc), ("AMC", amc), ("PLT", plt_),
                    ("RETIC", retic)):
        P.add(name, "10^9/L", v)
    P.add("HGB", "g/L", hgb)
    return pl.concat(P.frames)


def _crs_peak(c: _Cohort, t: np.ndarray, mag: Sequence[float]) -> np.ndarray:
    """Log-fold bump centred the day after CRS onset (day 7 without CRS, CAR-T expansion)."""
    g = c.crs_grade
    centre = _col(np.where(g > 0, c.crs_onset + 1, 7))
    sd = _col(np.where(g > 0, 1.0 + (c.crs_end - c.crs_onset + 1) / 4, 2.0))
    amp = _col(np.log(np.asarray(mag, dtype=float)[g]))
    return amp * np.exp(-0.5 * ((t - centre) / sd) ** 2) * (t > 0)  # day 0 is pre-infusion


def _chemistry_cytokines(c: _Cohort, rng: np.random.Generator) -> list[pl.DataFrame]:
    p = c.par
    frames: list[pl.DataFrame] = []
    P = _Panel(c, "chemistry", _CHEM_DAYS, stop_at_hsct=False)
    t = P.t
    for name, unit, key, sd, nd in (("CRP", "mg/L", "crp", 0.25, 1), ("FERRITIN", "ng/mL",
                                    "ferritin", 0.1, 0), ("LDH", "U/L", "ldh", 0.08, 0)):
        y = np.log(_col(p[key])) + _crs_peak(c, t, _CYTO_MAG[name])
        if name == "FERRITIN":  # iron loading goes on while transfusions go on
            y = y + np.where(_col(c.responder), -0.25, 0.3) * _sig(t, 120, 40) * (t > 0)
        P.add(name, unit, np.round(_noisy(rng, y, sd), nd))
    frames += P.frames

    P = _Panel(c, "cytokine", _CYTO_DAYS, stop_at_hsct=True)
    t = P.t
    for name, key in (("IL6", "il6"), ("IFNG", "ifng"), ("IL10", "il10"), ("IL2", "il2"),
                      ("TNFA", "tnfa"), ("IL2RA", "il2ra")):
        y = np.log(_col(p[key])) + _crs_peak(c, t, _CYTO_MAG[name])
        if name == "IFNG":  # the IFN-gamma axis: off in responders, on in non-responders
            y = y + np.log(_col(p["ifng_late"])) * _sig(t, 18, 3)
        P.add(name, "pg/mL", np.round(_noisy(rng, y, 0.2), 0 if name == "IL2RA" else 2))
    return frames + P.frames


def _car_t(c: _Cohort, rng: np.random.Generator) -> list[pl.DataFrame]:
    p = c.par
    P = _Panel(c, "car_t", _CAR_DAYS, stop_at_hsct=True)
    t = P.t
    level = _car_level(c, t)
    q = _col(p["car_peak"]) * level * np.exp(rng.normal(0, 0.15, t.shape))
    # Keep Tmax inside days 7-14 whatever the noise does (the documented kinetics truth).
    window = (P.T >= 7) & (P.T <= 14)
    peak = np.where(window, q, 0).max(axis=1, keepdims=True)
    q = np.where(window, q, np.minimum(q, 0.8 * peak))
    q = np.where(t <= 0, 0.0, np.round(q))  # pre-infusion sample: not detected
    P.add("CAR_QPCR", "copies/ug gDNA", q, lloq=50)
    pct = _col(p["car_pct_peak"]) * (q / peak) ** 0.6 * np.exp(rng.normal(0, 0.08, t.shape))
    pct = np.where(t <= 0, 0.0, np.round(pct, 2))
    P.add("CAR_PCT", "%", pct, lloq=0.1)
    t_cells = np.exp(_alc_log(c, t)) * 1000 * _col(p["t_frac"])
    P.add("CAR_ABS", "cells/uL", np.round(pct / 100 * t_cells, 1), lloq=1)
    return P.frames


def _immunophenotype(c: _Cohort, rng: np.random.Generator) -> list[pl.DataFrame]:
    p = c.par
    P = _Panel(c, "immunophenotype", _PHENO_DAYS, stop_at_hsct=True)
    t = P.t
    post = t > 0
    base, plat = _col(p["cd7neg_base"]), _col(p["cd7neg_plat"])
    cd7neg = base + (plat - base) * _sig(t, 8, 2.5) * post
    cd7neg = cd7neg * np.exp(-np.maximum(t - 180, 0) / 900)
    P.add("CD7NEG_T_PCT", "%", np.round(np.clip(cd7neg + rng.normal(0, 1.5, t.shape), 0.5, 99), 1))

    lb, ln = np.log(_col(p["nk_base"])), np.log(_col(p["nk_nadir"]))
    lr = np.log(_col(p["nk_base"] * p["nk_rec"]))
    y = lb + (ln - lb) * _sig(t, 3, 1.5) * post + (lr - ln) * _sig(t, _col(p["nk_trec"]), 45) * post
    P.add("NK_ABS", "cells/uL", np.round(_noisy(rng, y, 0.15), 1))

    t_cells = np.exp(_alc_log(c, t)) * 1000 * _col(p["t_frac"])
    cd4_frac = 0.45 - 0.15 * _sig(t, 7, 2) * post
    P.add("CD4_ABS", "cells/uL", np.round(t_cells * cd4_frac * np.exp(rng.normal(0, 0.1, t.shape))))
    P.add("CD8_ABS", "cells/uL",
          np.round(t_cells * (0.93 - cd4_frac) * np.exp(rng.normal(0, 0.1, t.shape))))
    lb = np.log(_col(p["b_base"]))
    y = lb - np.log(15) * _sig(t, 0, 1.5) * (t >= -3) + np.log(_col(p["b_rec"]) * 15) * _sig(t, 150, 30)
    P.add("B_ABS", "cells/uL", np.round(_noisy(rng, y, 0.15), 1))
    return P.frames


def _vitals(c: _Cohort, rng: np.random.Generator) -> list[pl.DataFrame]:
    """Daily vitals that agree with the recorded ASTCT 2019 CRS grade.

    Fever >=38.0 on every CRS day and never outside CRS in this window. Grade 2: hypotension
    without vasopressors and/or low-flow O2 <=6 L/min; grade 3: one vasopressor and/or O2 >6 L/min,
    on the day or two after onset.
    """
    P = _Panel(c, "vitals", _VITAL_DAYS, stop_at_hsct=True)
    T, shape = P.T, P.T.shape
    g, onset, end, mode = (_col(x) for x in (c.crs_grade, c.crs_onset, c.crs_end, c.crs_mode))
    in_crs = (g > 0) & (T >= onset) & (T <= end)
    sign = in_crs & (T >= onset + 1) & (T <= np.minimum(onset + 2, end))
    hypotension = sign & (((g == 2) & (mode != 1)) | ((g == 3) & (mode == 0)))
    low_flow = sign & (g == 2) & (mode >= 1)
    high_flow = sign & (g == 3) & (mode == 1)
    vaso = sign & (g == 3) & (mode == 0)

    temp = np.where(in_crs, rng.uniform(38.1, 39.7, shape),
                    np.clip(rng.normal(36.8, 0.25, shape), 36.0, 37.6))
    sbp = np.where(hypotension, rng.integers(76, 89, shape), rng.integers(104, 136, shape))
    o2 = np.where(low_flow, rng.integers(1, 5, shape),
                  np.where(high_flow, rng.choice(np.array([8, 10, 12]), shape), 0))
    spo2 = np.where(o2 > 0, rng.integers(91, 96, shape), rng.integers(95, 101, shape))
    P.add("TEMP", "C", np.round(temp, 1))
    P.add("SBP", "mmHg", sbp)
    P.add("SPO2", "%", spo2)
    P.add("O2_LPM", "L/min", o2)
    P.add("VASOPRESSORS", "count", vaso.astype(int))
    return P.frames


_ANALYTE_ORDER = ("WBC", "ANC", "ALC", "AMC", "PLT", "RETIC", "HGB", "CRP", "FERRITIN", "LDH",
                  "IL6", "IFNG", "IL10", "IL2", "TNFA", "IL2RA", "CAR_QPCR", "CAR_PCT", "CAR_ABS",
                  "CD7NEG_T_PCT", "NK_ABS", "CD4_ABS", "CD8_ABS", "B_ABS", "TEMP", "SBP", "SPO2",
                  "O2_LPM", "VASOPRESSORS")


def _measurements(c: _Cohort, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Returns (measurements as written, cbc in canonical units for the response rule)."""
    rng = _rng(seed, 2)
    cbc = _cbc(c, rng)
    frames = [cbc] + _chemistry_cytokines(c, rng) + _car_t(c, rng) + _immunophenotype(c, rng) \
        + _vitals(c, rng)
    rank = {a: i for i, a in enumerate(_ANALYTE_ORDER)}
    m = (
        pl.concat(frames)
        .with_columns(
            pl.col("lloq").fill_nan(None),
            tissue=pl.lit("blood"),
            sample_id=pl.lit(None, dtype=pl.String),
            _r=pl.col("analyte").replace_strict(rank, return_dtype=pl.Int32),
        )
        .sort(["subject_id", "day", "_r"])
        .drop("_r")
    )
    # Unit quirk on purpose: SAA-002's haemoglobin arrives in g/dL (loaders must convert).
    quirk = (pl.col("subject_id") == "SAA-002") & (pl.col("analyte") == "HGB")
    written = m.with_columns(
        value=pl.when(quirk).then((pl.col("value") / 10).round(1)).otherwise(pl.col("value")),
        unit=pl.when(quirk).then(pl.lit("g/dL")).otherwise(pl.col("unit")),
    )
    return written, cbc


# ---------------------------------------------------------------------------------------------
# responses, events


def _responses(c: _Cohort, cbc: pl.DataFrame) -> pl.DataFrame:
    """NIH (Townsley 2017) category from the counts on each assessment day, censored at HSCT."""
    hsct = pl.DataFrame({"subject_id": c.ids, "_hsct": c.hsct}).with_columns(
        pl.col("_hsct").fill_nan(None))
    wide = (
        cbc.filter(pl.col("day").is_in(ASSESSMENT_DAYS)
                   & pl.col("analyte").is_in(["ANC", "HGB", "PLT", "RETIC"]))
        .pivot(on="analyte", index=["subject_id", "day"], values="value")
        .join(hsct, on="subject_id")
        .filter(pl.col("_hsct").is_null() | (pl.col("day") < pl.col("_hsct")))
    )
    severe = ((pl.col("ANC") < 0.5).cast(pl.Int8) + (pl.col("PLT") < 20).cast(pl.Int8)
              + (pl.col("RETIC") < 60).cast(pl.Int8)) >= 2
    cr = (pl.col("ANC") >= 1.0) & (pl.col("HGB") >= 100) & (pl.col("PLT") >= 100)
    return (
        wide.with_columns(
            response=pl.when(cr).then(pl.lit("CR")).when(severe).then(pl.lit("NR"))
            .otherwise(pl.lit("PR")),
            criteria=pl.lit("NIH"),
            assessor=pl.lit("investigator"),
        )
        .select("subject_id", "day", "response", "criteria", "assessor")
        .sort("subject_id", "day")
    )


_EVENT_SCHEMA = {"subject_id": pl.String, "day": pl.Int64, "end_day": pl.Int64,
                 "category": pl.String, "term": pl.String, "grade": pl.Int64,
                 "product": pl.String, "units": pl.Int64}


def _first_crossing(base: np.ndarray, mid: np.ndarray, t50: np.ndarray, w: np.ndarray,
                    level: float) -> np.ndarray:
    """Day the (noise-free) first recovery phase crosses `level`; inf when it never does."""
    s = (np.log(level) - np.log(base)) / (np.log(mid) - np.log(base))
    with np.errstate(divide="ignore", invalid="ignore"):
        d = t50 - w * np.log(1 / s - 1)
    return np.where((s > 0) & (s < 1), d, np.inf)


def _transfusions(c: _Cohort, rng: np.random.Generator) -> pl.DataFrame:
    """PLT about twice a week and RBC every 10-18 days from day -28, until recovery or the end."""
    p, n = c.par, c.n
    end = c.last - 1
    hs = ~np.isnan(c.hsct)
    end = np.where(hs, np.nan_to_num(c.hsct) + 14, end)  # until donor engraftment
    plt_stop = _first_crossing(p["plt_base"], p["plt_mid"], p["plt_t50a"], p["plt_wa"], 20)
    plt_stop = np.where(c.responder, np.floor(plt_stop) - rng.integers(2, 7, n), end)
    rbc_stop = np.where(c.responder, p["hgb_t50a"] + rng.integers(0, 6, n), end + 10 * hs)
    out = []
    for product, lo, hi, stop, units_p in (("PLT", 3, 5, plt_stop, (0.8, 0.2)),
                                           ("RBC", 10, 19, rbc_stop, (0.4, 0.6))):
        k = int(np.ceil(600 / lo))
        days = -28 + rng.integers(0, lo, (n, 1)) + np.cumsum(rng.integers(lo, hi, (n, k)), axis=1) - lo
        keep = days <= np.minimum(_col(stop), _col(c.last - 1))
        pi, ji = np.nonzero(keep)
        out.append(pl.DataFrame({
            "subject_id": c.ids[pi], "day": days[pi, ji], "end_day": days[pi, ji],
            "units": rng.choice(np.array([1, 2]), len(pi), p=units_p),
        }).with_columns(
            category=pl.lit("transfusion"), term=pl.lit(f"{product} transfusion"),
            grade=pl.lit(None, dtype=pl.Int64), product=pl.lit(product),
        ).select(list(_EVENT_SCHEMA)).cast(_EVENT_SCHEMA))
    return pl.concat(out)


_AE_TERMS = ("Hypokalemia", "Hypophosphatemia", "Nausea", "Fatigue",
             "Alanine aminotransferase increased", "Headache", "Diarrhea", "Mucositis oral",
             "Rash maculo-papular", "Hypomagnesemia")


def _events(c: _Cohort, seed: int) -> pl.DataFrame:
    rng = _rng(seed, 3)
    rows: list[tuple] = []

    def add(i: int, day: float, end: float | None, cat: str, term: str, grade: int | None = None,
            product: str | None = None, units: int | None = None) -> None:
        if day <= c.last[i]:
            rows.append((c.ids[i], int(day), None if end is None else int(min(end, c.last[i])),
                         cat, term, grade, product, units))

    # A loop over patients (a handful of rows each); transfusions below are vectorised.
    for i in range(c.n):
        nr = not c.responder[i]
        add(i, -5, -3, "lymphodepletion", "Fludarabine/cyclophosphamide")
        add(i, 0, 0, "infusion", "CD7 CAR-T")
        if c.crs_grade[i]:
            add(i, c.crs_onset[i], c.crs_end[i], "crs", "Cytokine release syndrome",
                int(c.crs_grade[i]))
        if c.icans_grade[i]:
            add(i, c.icans_onset[i], c.icans_end[i], "icans",
                "Immune effector cell-associated neurotoxicity syndrome", int(c.icans_grade[i]))
        if rng.random() < 0.7:
            start = int(rng.integers(8, 13))
            add(i, start, start + int(rng.integers(6, 15)), "growth_factor", "G-CSF (filgrastim)")
        # Infections start after the vitals window so daily fevers there belong to CRS only.
        if rng.random() < (0.8 if nr else 0.3):
            d = int(rng.integers(16, 41))
            add(i, d, d + int(rng.integers(3, 8)), "infection", "Febrile neutropenia", 3)
        if rng.random() < 0.3:
            d = int(rng.integers(25, 61))
            add(i, d, d + int(rng.integers(14, 29)), "infection", "CMV reactivation", 2)
        if nr and rng.random() < 0.35:
            d = int(rng.integers(60, 201))
            add(i, d, d + int(rng.integers(7, 15)), "infection", "Pneumonia", 3)
        for term in rng.choice(np.array(_AE_TERMS), int(rng.integers(2, 5)), replace=False):
            d = int(rng.integers(0, 31))
            add(i, d, d + int(rng.integers(1, 10)), "adverse_event", str(term),
                int(rng.choice([1, 1, 1, 2, 2, 3])))
        if not np.isnan(c.hsct[i]):
            add(i, c.hsct[i], c.hsct[i], "hsct", "Allogeneic HSCT (matched unrelated donor)")
        if not np.isnan(c.progression[i]):
            add(i, c.progression[i], None, "progression", "Clonal evolution to MDS")
        if not np.isnan(c.death[i]):
            cause = "Sepsis" if np.isnan(c.hsct[i]) else "Graft-versus-host disease"
            if cause == "Sepsis":
                add(i, c.death[i] - 4, c.death[i], "infection", "Sepsis", 5)
            add(i, c.death[i], c.death[i], "death", cause, 5)
    ev = pl.concat([pl.DataFrame(rows, schema=_EVENT_SCHEMA, orient="row"), _transfusions(c, rng)])
    ev = pl.concat([ev, _medications(c, ev, seed)])
    order = {k: i for i, k in enumerate(("lymphodepletion", "infusion", "crs", "icans", "infection",
                                         "adverse_event", "growth_factor", "transfusion",
                                         "medication", "hsct", "progression", "death"))}
    return (ev.with_columns(_o=pl.col("category").replace_strict(order, return_dtype=pl.Int32))
            .sort(["subject_id", "day", "_o", "term"], maintain_order=True).drop("_o"))


# Anti-infective treatment per infection term: (drug as recorded, class).
_INFECTION_TREATMENT = {
    "Febrile neutropenia": ("Piperacillin/tazobactam 4.5 g q8h", "anti_infective"),
    "CMV reactivation": ("Ganciclovir 5 mg/kg q12h", "anti_infective"),
    "Pneumonia": ("Meropenem 1 g q8h", "anti_infective"),
    "Sepsis": ("Meropenem 1 g q8h", "anti_infective"),
}


def _medications(c: _Cohort, ev: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Concomitant medications (category medication, product = drug class), drawn from the events
    already written so that treatment follows what it treats:

    - tocilizumab 8 mg/kg on the day the grade-defining CRS signs appear (onset + 1) for CRS grade
      >= 2, a second dose the next day for grade 3 (ASTCT/EBMT management: tocilizumab from grade
      2); dexamethasone 10 mg q6h for 3 days for grade 3 CRS and for ICANS >= 2, one day after
      ICANS onset;
    - an anti-infective over each infection (piperacillin/tazobactam for febrile neutropenia,
      ganciclovir for CMV, meropenem for pneumonia and sepsis) and aciclovir prophylaxis from
      day -5 to day 365 for everyone;
    - eltrombopag 150 mg daily for partial responders from day 30-45 for 3-5 months, ciclosporin
      for non-responders not transplanted from day 60-90, and ciclosporin GVHD prophylaxis from
      the day before allogeneic HSCT for 6 months.

    Its own random stream (10): the other tables do not change with it. Nothing is given after
    last contact (ends are cut there); CAR-T-period drugs stop at HSCT.
    """
    rng = _rng(seed, 10)
    rows: list[tuple] = []

    def add(i: int, day: int, end: int, term: str, product: str) -> None:
        if day <= c.last[i]:
            rows.append((c.ids[i], int(day), int(min(end, c.last[i])), "medication", term, None,
                         product, None))

    crs = {r["subject_id"]: r for r in ev.filter(pl.col("category") == "crs").iter_rows(named=True)}
    icans = {r["subject_id"]: r for r in ev.filter(pl.col("category") == "icans")
             .iter_rows(named=True)}
    infections = ev.filter(pl.col("category") == "infection")
    for i in range(c.n):
        sid = str(c.ids[i])
        stop = c.last[i] if np.isnan(c.hsct[i]) else c.hsct[i] - 1
        add(i, -5, min(365, stop), "Aciclovir 400 mg bid (prophylaxis)", "anti_infective")
        if sid in crs and (crs[sid]["grade"] or 0) >= 2:
            d = crs[sid]["day"] + 1
            add(i, d, d, "Tocilizumab 8 mg/kg", "tocilizumab")
            if crs[sid]["grade"] >= 3:
                add(i, d + 1, d + 1, "Tocilizumab 8 mg/kg", "tocilizumab")
                add(i, d, d + 2, "Dexamethasone 10 mg q6h", "corticosteroid")
        if sid in icans and (icans[sid]["grade"] or 0) >= 2:
            d = icans[sid]["day"] + 1
            add(i, d, d + 2, "Dexamethasone 10 mg q6h", "corticosteroid")
        arch = c.arch[i]
        if arch == _PR:
            d = int(rng.integers(30, 46))
            add(i, d, min(d + int(rng.integers(90, 151)), stop), "Eltrombopag 150 mg daily",
                "tpo_ra")
        if arch == _NR and np.isnan(c.hsct[i]):
            add(i, int(rng.integers(60, 91)), int(c.last[i]), "Ciclosporin 5 mg/kg/day",
                "ciclosporin")
        if not np.isnan(c.hsct[i]):
            h = int(c.hsct[i])
            add(i, h - 1, h + 180, "Ciclosporin (GVHD prophylaxis)", "ciclosporin")
    for r in infections.iter_rows(named=True):
        treat = _INFECTION_TREATMENT.get(r["term"])
        if treat is not None:
            i = int(np.flatnonzero(c.ids == r["subject_id"])[0])
            add(i, r["day"], r["end_day"] if r["end_day"] is not None else r["day"], *treat)
    return pl.DataFrame(rows, schema=_EVENT_SCHEMA, orient="row")


# ---------------------------------------------------------------------------------------------
# samples and omics


SC_TIMEPOINTS = _ASSAYS["scrna"][2]
# the composition a single-cell timepoint draws from (_COMPOSITION holds three of the six)
_COMPOSITION_OF = {"Screening": "Screening", "D14": "D28", "D28": "D28", "M3": "M3", "M6": "M3",
                   "M12": "M3"}


def _samples(c: _Cohort, sc_timepoints: Sequence[str] = SC_TIMEPOINTS) -> pl.DataFrame:
    rows = []
    assays = {**_ASSAYS, "scrna": (*_ASSAYS["scrna"][:2], tuple(sc_timepoints))}
    for assay, (tissue, suffix, tps) in assays.items():
        for tp, day in TIMEPOINTS:
            if tp not in tps:
                continue
            d = c.screen if day is None else np.full(c.n, day)
            ok = (d <= c.last) & ~(d >= np.nan_to_num(c.hsct, nan=np.inf))
            sid = np.char.add(c.ids[ok].astype(str), f"_{tp}_{suffix}")
            rows.append(pl.DataFrame({
                "sample_id": sid, "subject_id": c.ids[ok], "day": d[ok].astype(np.int64),
                "timepoint": np.full(ok.sum(), tp), "tissue": np.full(ok.sum(), tissue),
                "assay": np.full(ok.sum(), assay),
                "file": np.char.add(np.char.add("flow/", c.ids[ok].astype(str)), f"_{tp}.fcs")
                if assay == "flow_fcs" else np.full(ok.sum(), None),
            }, schema={"sample_id": pl.String, "subject_id": pl.String, "day": pl.Int64,
                       "timepoint": pl.String, "tissue": pl.String, "assay": pl.String,
                       "file": pl.String}))
    tp_rank = {tp: i for i, (tp, _) in enumerate(TIMEPOINTS)}
    a_rank = {a: i for i, a in enumerate(_ASSAYS)}
    return (pl.concat(rows)
            .with_columns(_t=pl.col("timepoint").replace_strict(tp_rank, return_dtype=pl.Int32),
                          _a=pl.col("assay").replace_strict(a_rank, return_dtype=pl.Int32))
            .sort(["subject_id", "_t", "_a"]).drop("_t", "_a"))


def _sample_design(c: _Cohort, samples: pl.DataFrame, assay: str) -> dict[str, np.ndarray]:
    """Per-sample arrays: patient index, timepoint index, responder, post-infusion flag."""
    s = samples.filter(pl.col("assay") == assay)
    index = {sid: i for i, sid in enumerate(c.ids)}
    pi = np.array([index[x] for x in s["subject_id"]], dtype=int)
    tp = np.array([[t for t, _ in TIMEPOINTS].index(x) for x in s["timepoint"]], dtype=int)
    return {"sample_id": s["sample_id"].to_numpy(), "pi": pi, "tp": tp,
            "day": s["day"].to_numpy(), "responder": c.responder[pi], "post": tp > 0}


def _proteomics(c: _Cohort, samples: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Olink-style NPX (log2). Planted: IFNG/CXCL9/CXCL10 fall ~2.5 NPX in responders from D28
    and stay high in non-responders; FLT3LG/THPO high at baseline, fall with recovery."""
    rng = _rng(seed, 4)
    d = _sample_design(c, samples, "proteomics")
    feats = np.array([f for f, _, _ in _PROTEINS])
    F, S = len(feats), len(d["pi"])
    low = np.isin(feats, list(_LOW_PROTEINS))
    base = np.where(low, rng.uniform(1.0, 2.5, F), rng.uniform(3.0, 9.5, F))
    lod = np.round(np.where(low, base + rng.uniform(-0.6, 0.3, F), base - rng.uniform(1.5, 4, F)), 3)
    patient = rng.normal(0, 0.3, (c.n, F))[d["pi"]]
    effect = np.zeros((S, F))
    resp, tp = d["responder"][:, None], d["tp"][:, None]
    # timepoint index: 0 Screening, 1 D14, 2 D28, 3 M3, 4 M6, 5 M12
    ifn_r = np.array([0, -1.0, -2.5, -2.6, -2.7, -2.7])[tp]
    ifn_nr = np.array([0, 0.2, 0.3, 0.3, 0.3, 0.3])[tp]
    marrow_r = np.array([0, -0.2, -0.6, -1.5, -2.0, -2.2])[tp]
    for f in ("IFNG", "CXCL9", "CXCL10"):
        j = int(np.flatnonzero(feats == f)[0])
        effect[:, j] = (1.5 + np.where(resp, ifn_r, ifn_nr))[:, 0]
    j11 = int(np.flatnonzero(feats == "CXCL11")[0])
    effect[:, j11] = (1.0 + 0.5 * np.where(resp, ifn_r, ifn_nr))[:, 0]
    for f in ("FLT3LG", "THPO"):
        j = int(np.flatnonzero(feats == f)[0])
        effect[:, j] = (2.0 + np.where(resp, marrow_r, 0.0))[:, 0]
    for f, bump in (("GZMB", 1.5), ("IL10", 0.8), ("IL6", 0.6)):  # CAR-T expansion echo at D14
        j = int(np.flatnonzero(feats == f)[0])
        effect[:, j] = np.array([0, bump, bump / 3, 0, 0, 0])[tp][:, 0]
    npx = base[None, :] + patient + effect + rng.normal(0, 0.25, (S, F))
    warn = rng.random(S) < 0.04
    warn[int(rng.integers(S))] = True  # at least one flagged sample
    return pl.DataFrame({
        "sample_id": np.repeat(d["sample_id"], F),
        "feature": np.tile(feats, S),
        "value": np.round(npx, 3).ravel(),
        "uniprot": np.tile(np.array([u for _, u, _ in _PROTEINS]), S),
        "lod": np.tile(lod, S),
        "panel": np.tile(np.array([pn for _, _, pn in _PROTEINS]), S),
        "qc_warning": np.repeat(np.where(warn, "WARN", "PASS"), F),
    })


def _gene_space(n: int, *, extra: Sequence[str] = ()) -> np.ndarray:
    real = list(_REAL_GENES) + list(extra)
    synthetic = [f"GENE{i:04d}" for i in range(1, max(n - len(real), 0) + 1)]
    return np.array(real + synthetic)


def _rna_counts(c: _Cohort, samples: pl.DataFrame, seed: int, n_genes: int = 2000) -> pl.DataFrame:
    """Negative-binomial bulk counts (blood). Planted: the 12 ISG_GENES are 4-8 fold higher in
    non-responders than responders after infusion (log2 2-3), having been equal at Screening."""
    rng = _rng(seed, 5)
    d = _sample_design(c, samples, "rna")
    genes = _gene_space(n_genes)
    G, S = len(genes), len(d["pi"])
    base = np.exp(rng.normal(np.log(40), 1.8, G))
    # Ribosomal, mitochondrial and housekeeping transcripts dominate real libraries.
    abundant = np.char.startswith(genes, "RP") | np.char.startswith(genes, "MT-")
    base = np.where(abundant, base * 30 + 2000, base)
    lfc = np.zeros((G, S))  # log2
    post, resp = d["post"][None, :], d["responder"][None, :]
    isg = np.isin(genes, ISG_GENES)
    delta = rng.uniform(2.0, 3.0, G)[:, None]
    isg_effect = 1.0 + post * np.where(resp, -0.4 * delta, 0.6 * delta)
    lfc = np.where(isg[:, None], isg_effect, lfc)
    extra = np.isin(genes, _ISG_EXTRA) & ~isg
    lfc = np.where(extra[:, None], 0.5 * isg_effect, lfc)
    lfc = np.where(np.isin(genes, ["CD7"])[:, None], -2.0 * post, lfc)
    lfc = np.where(np.isin(genes, ["KLRF1", "NCAM1", "NCR1"])[:, None], -2.0 * post, lfc)
    ery = np.isin(genes, ["HBB", "HBA1", "HBA2", "ALAS2", "CA1", "AHSP"])[:, None]
    lfc = np.where(ery, 2.5 * post * resp * (d["tp"][None, :] >= 2), lfc)
    size = rng.uniform(0.7, 1.4, S)[None, :] * 1.2
    mu = base[:, None] * size * 2.0 ** lfc * np.exp(rng.normal(0, 0.15, (c.n, G))[d["pi"]].T)
    alpha = 0.04 + 0.6 / np.sqrt(base)[:, None]  # NB dispersion, larger for low counts
    counts = rng.poisson(rng.gamma(1 / alpha, mu * alpha))
    frame = pl.DataFrame(counts, schema=[str(s) for s in d["sample_id"]], orient="row")
    return frame.insert_column(0, pl.Series("gene", genes))


_MUT_VARIANTS: dict[str, tuple[tuple[str, str], ...]] = {
    "PIGA": (("p.R119W", "Missense_Mutation"), ("p.Q128*", "Nonsense_Mutation"),
             ("p.G48Vfs*9", "Frame_Shift_Del"), ("p.L304P", "Missense_Mutation")),
    "BCOR": (("p.R1164*", "Nonsense_Mutation"), ("p.N1459Kfs*6", "Frame_Shift_Ins"),
             ("p.E1510*", "Nonsense_Mutation")),
    "BCORL1": (("p.Q1076*", "Nonsense_Mutation"), ("p.R1265Gfs*3", "Frame_Shift_Del")),
    "DNMT3A": (("p.R882H", "Missense_Mutation"), ("p.R736C", "Missense_Mutation"),
               ("p.W860*", "Nonsense_Mutation")),
    "ASXL1": (("p.G646Wfs*12", "Frame_Shift_Ins"), ("p.E635Rfs*15", "Frame_Shift_Ins"),
              ("p.Q592*", "Nonsense_Mutation")),
}


def _mutations(c: _Cohort, samples: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Marrow clones. Responders: PIGA/BCOR/BCORL1 stable or shrinking. Non-responders who
    progress: DNMT3A and ASXL1 clones grow (~0.04 -> ~0.2 within a year)."""
    rng = _rng(seed, 6)
    n, k = c.n, min(c.n, 5)
    resp = c.responder
    grows = ~resp & ~np.isnan(c.progression)

    def has(key: str, rest: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(_DEMO[key][:k], dtype=bool), rest[k:]])

    specs = {  # gene -> (carrier, vaf0, growth per year on the log scale)
        "PIGA": (c.pnh > 0, np.clip(c.pnh / 100 * rng.uniform(0.8, 1.2, n), 0.02, 0.3),
                 np.where(resp, rng.uniform(-0.9, -0.2, n), rng.uniform(-0.1, 0.3, n))),
        "BCOR": (has("bcor", rng.random(n) < 0.3), rng.uniform(0.04, 0.1, n),
                 np.where(resp, rng.uniform(-1.6, -0.8, n), rng.uniform(-0.2, 0.3, n))),
        "BCORL1": (has("bcorl1", rng.random(n) < 0.15), rng.uniform(0.03, 0.08, n),
                   np.where(resp, rng.uniform(-1.4, -0.6, n), rng.uniform(-0.2, 0.3, n))),
        "DNMT3A": (has("dnmt3a", grows | (rng.random(n) < 0.15)),
                   np.where(grows, rng.uniform(0.035, 0.06, n), rng.uniform(0.02, 0.04, n)),
                   np.where(grows, rng.uniform(1.3, 1.7, n), rng.uniform(-0.2, 0.2, n))),
        "ASXL1": (has("asxl1", grows | (rng.random(n) < 0.05)),
                  np.where(grows, rng.uniform(0.02, 0.035, n), rng.uniform(0.02, 0.03, n)),
                  np.where(grows, rng.uniform(1.4, 1.8, n), rng.uniform(-0.2, 0.2, n))),
    }
    d = _sample_design(c, samples, "mutations")
    t_year = np.maximum(d["day"], 0) / 365.0
    frames = []
    for gene, (carrier, v0, growth) in specs.items():
        choice = rng.integers(0, len(_MUT_VARIANTS[gene]), n)
        on = carrier[d["pi"]]
        pi = d["pi"][on]
        vaf = np.minimum(v0[pi] * np.exp(growth[pi] * t_year[on]), 0.45)
        depth = rng.integers(600, 2001, on.sum())
        alt = rng.binomial(depth, vaf)
        keep = alt >= 4  # about 0.5% detection limit; an absent row means not detected
        var = np.array(_MUT_VARIANTS[gene])[choice[pi]].reshape(-1, 2)
        frames.append(pl.DataFrame({
            "_s": np.flatnonzero(on)[keep],
            "sample_id": d["sample_id"][on][keep], "gene": np.full(keep.sum(), gene),
            "vaf": np.round(alt[keep] / depth[keep], 4), "variant": var[keep, 0],
            "depth": depth[keep], "classification": var[keep, 1],
        }, schema={"_s": pl.Int64, "sample_id": pl.String, "gene": pl.String, "vaf": pl.Float64,
                   "variant": pl.String, "depth": pl.Int64, "classification": pl.String}))
    return pl.concat(frames).sort("_s", "gene").drop("_s")  # samples.csv order


_TRBV = ("TRBV2", "TRBV3-1", "TRBV4-1", "TRBV5-1", "TRBV6-1", "TRBV6-5", "TRBV7-2", "TRBV7-9",
         "TRBV9", "TRBV10-3", "TRBV11-2", "TRBV12-3", "TRBV12-4", "TRBV13", "TRBV14", "TRBV15",
         "TRBV18", "TRBV19", "TRBV20-1", "TRBV24-1", "TRBV25-1", "TRBV27", "TRBV28", "TRBV29-1",
         "TRBV30")
# J gene -> germline-encoded end of the junction (ends with the conserved F).
_TRBJ = {"TRBJ1-1": "NTEAFF", "TRBJ1-2": "NYGYTF", "TRBJ1-3": "SGNTIYF", "TRBJ1-4": "TNEKLFF",
         "TRBJ1-5": "SNQPQHF", "TRBJ1-6": "SPLHF", "TRBJ2-1": "SYNEQFF", "TRBJ2-2": "NTGELFF",
         "TRBJ2-3": "STDTQYF", "TRBJ2-4": "AKNIQYF", "TRBJ2-5": "QETQYF", "TRBJ2-6": "SGANVLTF",
         "TRBJ2-7": "SYEQYF"}
_AA = np.frombuffer(b"ARNDQEGHILKMFPSTWYV", dtype=np.uint8)


def _junctions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random TRB CDR3 (AIRR junction, C...F) with V and J calls, built as arrays."""
    prefixes = np.array(["CASS", "CASS", "CASS", "CASSL", "CASSP", "CSAR", "CSVE", "CAST", "CAIS"])
    j_names = np.array(list(_TRBJ))
    j = rng.integers(0, len(j_names), n)
    length = rng.integers(3, 8, n)
    codes = _AA[rng.integers(0, len(_AA), (n, 7))]
    codes[np.arange(7)[None, :] >= length[:, None]] = 0  # NUL padding is dropped by the S dtype
    middle = codes.view("S7").ravel().astype(str)
    junction = np.strings.add(np.strings.add(prefixes[rng.integers(0, len(prefixes), n)], middle),
                              np.array(list(_TRBJ.values()))[j])
    return junction, np.array(_TRBV)[rng.integers(0, len(_TRBV), n)], j_names[j]


def _tcr(c: _Cohort, samples: pl.DataFrame, seed: int, pool: int = 2500
         ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """TRB repertoires. Oligoclonal CD8 expansions (top-10 ~30-50% at Screening) contract in
    responders after infusion and persist in non-responders. Also returns the expanded clones
    (p, rank, junction_aa, v_call, j_call, weight), which the single T cells carry too."""
    rng = _rng(seed, 7)
    n = c.n
    junction, v, j = _junctions(rng, n * pool * 13 // 10)
    clones = (pl.DataFrame({"p": np.repeat(np.arange(n), pool * 13 // 10), "junction_aa": junction,
                            "v_call": v, "j_call": j})
              .unique(subset=["p", "junction_aa"], keep="first", maintain_order=True)
              .group_by("p", maintain_order=True).head(pool))
    sizes = np.bincount(clones["p"].to_numpy(), minlength=n)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    n_exp = 12
    bg = np.exp(rng.normal(0, 1.6, len(clones)))
    exp_w = np.sort(np.exp(rng.normal(0, 0.7, (n, n_exp))), axis=1)[:, ::-1]
    f0 = rng.uniform(0.34, 0.55, n)
    # share of the expanded clones by timepoint (Screening, D14, D28, M3, M6, M12)
    factor = {True: np.array([1.0, 0.7, 0.45, 0.3, 0.25, 0.22]),
              False: np.array([1.0, 1.0, 1.05, 1.0, 1.05, 1.1])}
    d = _sample_design(c, samples, "tcr")
    sid, cid, cnt = [], [], []
    for s, (pi, tp, resp) in enumerate(zip(d["pi"], d["tp"], d["responder"], strict=True)):
        lo, m = start[pi], sizes[pi]
        share = min(f0[pi] * factor[bool(resp)][tp] * np.exp(rng.normal(0, 0.08)), 0.7)
        w_exp = exp_w[pi] * np.exp(rng.normal(0, 0.15, n_exp))
        w_bg = bg[lo + n_exp: lo + m] * np.exp(rng.normal(0, 0.5, m - n_exp))
        prob = np.concatenate([w_exp / w_exp.sum() * share, w_bg / w_bg.sum() * (1 - share)])
        # Fewer T-cell templates right after lymphodepletion.
        total = int(rng.integers(1500, 3000) if tp in (1, 2) else rng.integers(3000, 7000))
        k = rng.multinomial(total, prob)
        nz = np.flatnonzero(k)
        sid.append(np.full(len(nz), s))
        cid.append(lo + nz)
        cnt.append(k[nz])
    sid_a, cid_a, cnt_a = (np.concatenate(x) for x in (sid, cid, cnt))
    rows = (start[:, None] + np.arange(n_exp)[None, :]).ravel()
    expanded = pl.DataFrame({
        "p": np.repeat(np.arange(n), n_exp), "rank": np.tile(np.arange(1, n_exp + 1), n),
        "junction_aa": clones["junction_aa"].to_numpy()[rows],
        "v_call": clones["v_call"].to_numpy()[rows], "j_call": clones["j_call"].to_numpy()[rows],
        "weight": exp_w.ravel()})
    return pl.DataFrame({
        "_s": sid_a,
        "sample_id": d["sample_id"][sid_a],
        "junction_aa": clones["junction_aa"].to_numpy()[cid_a],
        "count": cnt_a,
        "v_call": clones["v_call"].to_numpy()[cid_a],
        "j_call": clones["j_call"].to_numpy()[cid_a],
        "productive": np.ones(len(cid_a), dtype=bool),
        "locus": np.full(len(cid_a), "TRB"),
    }).sort(["_s", "count", "junction_aa"], descending=[False, True, False]).drop("_s"), expanded


_TRAV = ("TRAV1-2", "TRAV2", "TRAV3", "TRAV8-1", "TRAV8-4", "TRAV8-6", "TRAV9-2", "TRAV12-1",
         "TRAV12-2", "TRAV12-3", "TRAV13-1", "TRAV14DV4", "TRAV17", "TRAV19", "TRAV20", "TRAV21",
         "TRAV22", "TRAV24", "TRAV25", "TRAV26-1", "TRAV26-2", "TRAV27", "TRAV29DV5", "TRAV38-2DV8")
# J gene -> germline-encoded end of the TRA junction (ends with the conserved F or W).
_TRAJ = {"TRAJ3": "GSSASKIIF", "TRAJ9": "GNTGGFKTIF", "TRAJ13": "NSGGYQKVTF",
         "TRAJ20": "SNDYKLSF", "TRAJ23": "NQGGKLIF", "TRAJ31": "NNARLMF", "TRAJ33": "DSNYQLIW",
         "TRAJ37": "GSGNTGKLIF", "TRAJ42": "NYGGSQGNLIF", "TRAJ49": "NTGNQFYF",
         "TRAJ52": "NAGGTSYGKLTF", "TRAJ53": "SGGSNYKLTF"}


def _tra_junctions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random TRA CDR3 (AIRR junction, C...F/W) with V and J calls, built as arrays."""
    prefixes = np.array(["CAV", "CAVR", "CALS", "CAAS", "CAMRE", "CVVN", "CAS", "CAE"])
    j_names = np.array(list(_TRAJ))
    j = rng.integers(0, len(j_names), n)
    length = rng.integers(1, 6, n)
    codes = _AA[rng.integers(0, len(_AA), (n, 5))]
    codes[np.arange(5)[None, :] >= length[:, None]] = 0
    middle = codes.view("S5").ravel().astype(str)
    junction = np.strings.add(np.strings.add(prefixes[rng.integers(0, len(prefixes), n)], middle),
                              np.array(list(_TRAJ.values()))[j])
    return junction, np.array(_TRAV)[rng.integers(0, len(_TRAV), n)], j_names[j]


# Share of a patient's CD8 T cells in the expanded (dominant) clones by timepoint (Screening,
# D14, D28, M3, M6, M12): stronger than in blood (tcr.csv), marrow being where the clones sit.
_CELL_EXPANDED = {True: np.array([1.0, 0.6, 0.3, 0.15, 0.12, 0.1]),
                  False: np.array([1.0, 1.0, 1.05, 1.05, 1.05, 1.1])}
_T_TYPES = ("CD4 T", "CD8 TEM", "CAR-T")
_AIRR_COLUMNS = ("cell_id", "sequence_id", "locus", "v_call", "j_call", "c_call", "junction_aa",
                 "productive", "duplicate_count")


def _cell_receptors(c: _Cohort, cells: pl.DataFrame, expanded: pl.DataFrame, seed: int,
                    pools: tuple[int, int, int] = (3000, 5000, 400)) -> pl.DataFrame:
    """Paired TRA/TRB chains per T cell of the single-cell data, as an AIRR rearrangement table
    with cell_id (one row per chain).

    - 85% of T cells (CD4 T, CD8 TEM, CAR-T) have receptors: 88% of those a TRA and a TRB
      chain, 8% TRB only, 4% TRA only; 4% of the paired cells carry a second, weaker TRA.
    - CD8 TEM cells draw from the patient's 12 expanded clones (the TRB clones expanded in
      tcr.csv, with their weights, each given one TRA chain) with probability
      0.45-0.6 x `_CELL_EXPANDED` (falls to 0.3 at D28 and 0.15 at M3 in responders, stays in
      non-responders), else from a polyclonal CD8 pool; CD4 T cells from a CD4 pool; CAR-T
      cells from the patient's infusion-product pool (absent at Screening, shared by D28 and
      M3: "new" clones after infusion).
    """
    if cells.height == 0:
        return pl.DataFrame(schema={k: pl.Int64 if k == "duplicate_count" else pl.String
                                    for k in _AIRR_COLUMNS})
    rng = _rng(seed, 10)
    n = c.n
    n_cd8, n_cd4, n_car = pools
    cols = {k: [] for k in ("cell", "clone")}
    # clone tables per patient: expanded (12), CD8 pool, CD4 pool, CAR-T product pool
    n_exp = int(expanded.filter(pl.col("p") == 0).height)
    per = n_exp + n_cd8 + n_cd4 + n_car
    trb, trbv, trbj = _junctions(rng, n * per)
    tra, trav, traj = _tra_junctions(rng, n * per)
    exp_rows = (np.arange(n)[:, None] * per + np.arange(n_exp)[None, :]).ravel()
    trb[exp_rows] = expanded["junction_aa"].to_numpy()
    trbv[exp_rows] = expanded["v_call"].to_numpy()
    trbj[exp_rows] = expanded["j_call"].to_numpy()
    w_exp = expanded["weight"].to_numpy().reshape(n, n_exp)
    w_cd8 = np.exp(rng.normal(0, 1.0, (n, n_cd8)))
    w_cd4 = np.exp(rng.normal(0, 0.8, (n, n_cd4)))
    w_car = np.exp(rng.normal(0, 1.2, (n, n_car)))
    f0 = rng.uniform(0.45, 0.6, n)
    ct = cells["cell_type"].to_numpy()
    pi_all = cells["pi"].to_numpy()
    tp_all = cells["tp"].to_numpy()
    resp_all = cells["responder"].to_numpy()
    samples = cells["s"].to_numpy()
    t_type = {name: CELL_TYPES.index(name) for name in _T_TYPES}
    for s in np.unique(samples):
        idx = np.flatnonzero(samples == s)
        pi, tp, resp = int(pi_all[idx[0]]), int(tp_all[idx[0]]), bool(resp_all[idx[0]])
        base = pi * per
        cd8 = idx[ct[idx] == t_type["CD8 TEM"]]
        share = min(f0[pi] * _CELL_EXPANDED[resp][tp], 0.8)
        prob = np.concatenate([w_exp[pi] / w_exp[pi].sum() * share,
                               w_cd8[pi] / w_cd8[pi].sum() * (1 - share)])
        cols["cell"].append(cd8)
        cols["clone"].append(base + rng.choice(n_exp + n_cd8, size=len(cd8), p=prob))
        cd4 = idx[ct[idx] == t_type["CD4 T"]]
        cols["cell"].append(cd4)
        cols["clone"].append(base + n_exp + n_cd8
                             + rng.choice(n_cd4, size=len(cd4), p=w_cd4[pi] / w_cd4[pi].sum()))
        car = idx[ct[idx] == t_type["CAR-T"]]
        cols["cell"].append(car)
        cols["clone"].append(base + n_exp + n_cd8 + n_cd4
                             + rng.choice(n_car, size=len(car), p=w_car[pi] / w_car[pi].sum()))
    cell = np.concatenate([np.zeros(0, np.int64), *cols["cell"]])
    clone = np.concatenate([np.zeros(0, np.int64), *cols["clone"]])
    order = np.argsort(cell, kind="stable")
    cell, clone = cell[order], clone[order]
    keep = rng.random(len(cell)) < 0.85
    cell, clone = cell[keep], clone[keep]
    kind = rng.choice(3, size=len(cell), p=[0.88, 0.08, 0.04])   # paired, TRB only, TRA only
    extra = (kind == 0) & (rng.random(len(cell)) < 0.04)
    extra_tra, extra_v, extra_j = _tra_junctions(rng, len(cell))
    names = cells["cell_id"].to_numpy()
    parts = []
    for locus, on, junction, v, j, umis, c_call in (
            ("TRA", kind != 1, tra[clone], trav[clone], traj[clone],
             rng.integers(2, 12, len(cell)), np.full(len(cell), "TRAC")),
            ("TRB", kind != 2, trb[clone], trbv[clone], trbj[clone],
             rng.integers(3, 18, len(cell)),
             np.where(rng.random(len(cell)) < 0.5, "TRBC1", "TRBC2")),
            ("TRA", extra, extra_tra, extra_v, extra_j, np.ones(len(cell), np.int64),
             np.full(len(cell), "TRAC"))):
        k = np.flatnonzero(on)
        parts.append(pl.DataFrame({
            "_cell": cell[k], "_order": np.full(len(k), len(parts)),
            "cell_id": names[cell[k]], "locus": np.full(len(k), locus), "v_call": v[k],
            "j_call": j[k], "c_call": c_call[k], "junction_aa": junction[k],
            "productive": np.full(len(k), "T"),
            "duplicate_count": umis[k].astype(np.int64)}))
    out = pl.concat(parts).sort("_cell", "_order")
    return (out.with_columns(pl.format("{}_contig_{}", pl.col("cell_id"),
                                       pl.int_range(1, pl.len() + 1).over("_cell"))
                             .alias("sequence_id"))
            .select(list(_AIRR_COLUMNS)))


# ---------------------------------------------------------------------------------------------
# single cell

# Cell-type composition (marrow) by timepoint and group: rows follow CELL_TYPES.
_COMPOSITION = {
    ("Screening", True): (0.24, 0.26, 0.12, 0.07, 0.15, 0.03, 0.13, 0.0),
    ("Screening", False): (0.24, 0.26, 0.12, 0.07, 0.15, 0.03, 0.13, 0.0),
    ("D28", True): (0.10, 0.14, 0.015, 0.03, 0.17, 0.09, 0.25, 0.205),
    ("D28", False): (0.17, 0.31, 0.015, 0.05, 0.17, 0.03, 0.13, 0.08),
    ("M3", True): (0.12, 0.14, 0.025, 0.04, 0.17, 0.10, 0.30, 0.105),
    ("M3", False): (0.18, 0.33, 0.02, 0.05, 0.18, 0.03, 0.14, 0.05),
}
_UMIS = (190, 210, 190, 180, 260, 280, 170, 320)  # mean UMIs per cell type (kept low: file size)
_UMAP_CENTRES = np.array([[-4.0, 3.0], [-1.5, 4.5], [1.5, 5.5], [-6.5, -1.0], [5.5, 1.0],
                          [2.0, -4.5], [5.5, -5.0], [0.5, 2.0]])


def _profiles(genes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Expression probabilities, shape (8 types x 2 post x 2 non-responder, genes)."""
    g = len(genes)
    w = np.where(np.char.startswith(genes.astype(str), "GENE"), np.exp(rng.normal(-1.2, 1.1, g)),
                 np.exp(rng.normal(-0.4, 1.0, g)))
    w = np.where(np.char.startswith(genes.astype(str), "RP"), rng.uniform(8, 20, g), w)
    w = np.where(np.char.startswith(genes.astype(str), "MT-"), rng.uniform(5, 15, g), w)
    hk = np.isin(genes, ["MALAT1", "ACTB", "B2M", "TMSB4X", "EEF1A1", "TPT1", "FTL", "FTH1",
                         "TMSB10", "PTMA", "MYL6", "GAPDH"])
    w = np.where(hk, rng.uniform(10, 25, g), w)
    all_markers = set().union(*_MARKERS.values())
    is_marker = np.isin(genes, list(all_markers))
    w = np.where(is_marker, 0.03, w)  # markers are near-silent outside their type
    w = np.where(genes == "CAR", 0.0, w)
    w = np.where(genes == "CD7", 0.03, w)
    isg = np.isin(genes, list(ISG_GENES) + list(_ISG_EXTRA))
    cd7 = genes == "CD7"
    prof = np.empty((len(CELL_TYPES), 2, 2, g))
    for ti, ct in enumerate(CELL_TYPES):
        wt = w.copy()
        m = np.isin(genes, _MARKERS[ct])
        wt[m] = rng.uniform(6, 20, m.sum())
        if ct in _CD7_TYPES:
            wt[cd7] = 10.0
        if ct == "CAR-T":
            wt[genes == "CAR"] = 40.0  # the construct is highly expressed: few dropouts
        for post in (0, 1):
            for nr in (0, 1):
                x = wt.copy()
                if post and ct in _CD7_TYPES:
                    x[cd7] *= 0.05  # CD7 lost after CD7 CAR-T
                if ct == "CAR-T":
                    x[cd7] = 0.0
                x[isg] *= (2.0 if not post else (4.0 if nr else 0.8))
                prof[ti, post, nr] = x / x.sum()
    return prof.reshape(-1, g)


def _single_cell(c: _Cohort, samples: pl.DataFrame, cells: int, seed: int, path: Path,
                 n_genes: int = 1500, chunk: int = 4000) -> pl.DataFrame:
    """Write the .h5ad; return its cells (cell_id, s, pi, tp, responder, cell_type index) for
    the receptor table."""
    # Heavy imports stay here so `--help` and the CSV-only paths start fast.
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    rng = _rng(seed, 8)
    d = _sample_design(c, samples, "scrna")
    S = len(d["pi"])
    tp_names = [t for t, _ in TIMEPOINTS]
    genes = _gene_space(n_genes, extra=["CAR"])
    G = len(genes)
    prof = _profiles(genes, rng).astype(np.float32)

    share = rng.uniform(0.7, 1.3, S)
    n_per = rng.multinomial(cells, share / share.sum())
    comp = np.zeros((S, len(CELL_TYPES)))
    for s in range(S):  # one Dirichlet per sample (hundreds at most)
        base = np.asarray(_COMPOSITION[(_COMPOSITION_OF[tp_names[d["tp"][s]]],
                                        bool(d["responder"][s]))])
        on = base > 0
        comp[s, on] = rng.dirichlet(300 * base[on])
    cell_sample = np.repeat(np.arange(S), n_per)
    N = len(cell_sample)
    cum = np.cumsum(comp, axis=1)[cell_sample]
    ctype = np.minimum((rng.random(N)[:, None] > cum).sum(axis=1), len(CELL_TYPES) - 1)
    post = d["post"][cell_sample].astype(int)
    nr = (~d["responder"][cell_sample]).astype(int)
    state = ctype * 4 + post * 2 + nr
    umis = np.exp(rng.normal(np.log(np.asarray(_UMIS)[ctype]), 0.35)).astype(np.float32)

    # Poisson counts per chunk of cells, kept only as CSR arrays (memory ~ chunk x genes); the
    # normalised values are computed per chunk too, so no cell-length index array is needed.
    car_col = int(np.flatnonzero(genes == "CAR")[0])
    # Each list starts with an empty piece so that cells=0 still yields a valid (0 x G) matrix.
    data: list[np.ndarray] = [np.zeros(0, np.int32)]
    norm: list[np.ndarray] = [np.zeros(0, np.float32)]
    indices: list[np.ndarray] = [np.zeros(0, np.int32)]
    row_nnz: list[np.ndarray] = [np.zeros(0, np.int64)]
    totals: list[np.ndarray] = [np.zeros(0, np.int64)]
    car: list[np.ndarray] = [np.zeros(0, bool)]
    for lo in range(0, N, chunk):
        hi = min(lo + chunk, N)
        lam = prof[state[lo:hi]] * umis[lo:hi, None]
        dense = rng.poisson(lam).astype(np.int32)
        tot = dense.sum(axis=1)
        r, col = np.nonzero(dense)
        vals = dense[r, col]
        data.append(vals)
        norm.append(np.log1p(vals / np.maximum(tot[r], 1) * 1e4).astype(np.float32))
        indices.append(col.astype(np.int32))
        row_nnz.append(np.bincount(r, minlength=hi - lo))
        totals.append(tot)
        car.append(dense[:, car_col] > 0)
    # Concatenate one array at a time and drop its pieces at once: keeps the peak near 1x.
    cnt_idx = np.concatenate(indices)
    del indices
    cnt_data = np.concatenate(data)
    del data
    norm_data = np.concatenate(norm)
    del norm
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(row_nnz))]).astype(np.int64)
    # X and counts share one indices/indptr pair (read-only here), halving that memory.
    counts = sp.csr_matrix((cnt_data, cnt_idx, indptr), shape=(N, G))
    X = sp.csr_matrix((norm_data, cnt_idx, indptr), shape=(N, G))
    totals_a = np.concatenate(totals)
    car_positive = np.concatenate(car)

    tshift = np.array([[0.0, 0.0], [0.0, 0.0], [0.35, 0.15], [0.6, -0.1], [0, 0], [0, 0]])
    umap = (_UMAP_CENTRES[ctype] + tshift[d["tp"][cell_sample]]
            + rng.normal(0, 0.55, (N, 2))).astype(np.float32)
    pc_sd = 4.0 * 0.8 ** np.arange(20)
    centres = rng.normal(0, 1, (len(CELL_TYPES), 20)) * pc_sd
    pca = (centres[ctype] + rng.normal(0, 0.6, (N, 20)) * np.sqrt(pc_sd)).astype(np.float32)

    sample_ids = d["sample_id"].astype(str)
    serial = np.strings.zfill(np.arange(N).astype(str), 7) if N else np.zeros(0, "<U7")
    names = np.strings.add(np.strings.add(sample_ids[cell_sample], "_"), serial)
    obs = pd.DataFrame({
        "subject_id": pd.Categorical.from_codes(d["pi"][cell_sample], categories=c.ids.tolist()),
        "sample_id": pd.Categorical.from_codes(cell_sample, categories=sample_ids.tolist()),
        "day": d["day"][cell_sample].astype(np.int64),
        "timepoint": pd.Categorical.from_codes(d["tp"][cell_sample], categories=tp_names),
        "tissue": pd.Categorical.from_codes(np.zeros(N, dtype=int), categories=["marrow"]),
        "cell_type": pd.Categorical.from_codes(ctype, categories=list(CELL_TYPES)),
        "car_positive": car_positive,
        "total_counts": totals_a.astype(np.int64),
        "n_genes": np.diff(indptr).astype(np.int64),
    }, index=pd.Index(names, name="cell_id"))
    var = pd.DataFrame({"feature_type": np.where(genes == "CAR", "CAR construct",
                                                 "Gene Expression")},
                       index=pd.Index(genes.astype(str), name="gene"))
    adata = ad.AnnData(X=X, obs=obs, var=var, layers={"counts": counts},
                       obsm={"X_umap": umap, "X_pca": pca})
    # No scalar `uns` entries: h5py refuses filter options (shuffle) on scalar datasets.
    # gzip + shuffle: shuffle regroups bytes of int32/float32 arrays so gzip finds the runs.
    ad.io.write_h5ad(path, adata, dataset_kwargs={"compression": "gzip", "compression_opts": 6,
                                                 "shuffle": True})
    return pl.DataFrame({"cell_id": names.astype(str), "s": cell_sample.astype(np.int64),
                         "pi": d["pi"][cell_sample].astype(np.int64),
                         "tp": d["tp"][cell_sample].astype(np.int64),
                         "responder": d["responder"][cell_sample].astype(bool),
                         "cell_type": ctype.astype(np.int64)})


# ---------------------------------------------------------------------------------------------
# flow cytometry

_FCS_CHANNELS = (("FSC-A", ""), ("SSC-A", ""), ("FITC-A", "CD3"), ("PE-A", "CD7"),
                 ("PerCP-Cy5-5-A", "CD4"), ("PE-Cy7-A", "CD56"), ("APC-A", "CAR"),
                 ("APC-H7-A", "CD8"), ("BV421-A", "CD19"), ("BV510-A", "CD14"), ("Time", ""))
# population -> marker levels for CD3, CD7, CD4, CD56, CAR, CD8, CD19, CD14 (0 neg, 1 dim, 2 pos)
_FCS_POPS = np.array([
    [2, 2, 2, 0, 0, 0, 0, 0],  # CD4 T
    [2, 2, 0, 0, 0, 2, 0, 0],  # CD8 T
    [2, 0, 2, 0, 0, 0, 0, 0],  # CD4 T CD7-
    [2, 0, 0, 0, 0, 2, 0, 0],  # CD8 T CD7-
    [2, 0, 0, 0, 2, 2, 0, 0],  # CAR-T CD8
    [2, 0, 2, 0, 2, 0, 0, 0],  # CAR-T CD4
    [0, 2, 0, 2, 0, 1, 0, 0],  # NK
    [0, 0, 0, 0, 0, 0, 2, 0],  # B
    [0, 1, 1, 0, 0, 0, 0, 2],  # monocyte
    [0, 0, 0, 0, 0, 0, 0, 1],  # granulocyte
])
_FCS_SCATTER = np.array([[55e3, 12e3]] * 8 + [[85e3, 40e3], [95e3, 110e3]])
_FCS_FRACTIONS = {
    "pre": (0.27, 0.24, 0.015, 0.015, 0.0, 0.0, 0.10, 0.06, 0.12, 0.17),
    "post_r": (0.05, 0.05, 0.10, 0.14, 0.12, 0.04, 0.005, 0.01, 0.20, 0.285),
    "post_nr": (0.07, 0.08, 0.10, 0.20, 0.05, 0.02, 0.005, 0.02, 0.18, 0.275),
}


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _flow(c: _Cohort, samples: pl.DataFrame, seed: int, out: Path, events: int = 5000) -> None:
    import flowio

    rng = _rng(seed, 9)
    s = samples.filter(pl.col("assay") == "flow_fcs")
    index = {sid: i for i, sid in enumerate(c.ids)}
    flow_dir = out / "flow"
    flow_dir.mkdir(parents=True, exist_ok=True)
    for old in flow_dir.glob("*.fcs"):  # stale files from an earlier, larger run
        old.unlink()
    names = [ch for ch, _ in _FCS_CHANNELS]
    markers = [m for _, m in _FCS_CHANNELS]
    for sample_id, subject, day, tp, rel in s.select("sample_id", "subject_id", "day",
                                                      "timepoint", "file").iter_rows():
        i = index[subject]
        key = "pre" if tp == "Screening" else ("post_r" if c.responder[i] else "post_nr")
        frac = np.asarray(_FCS_FRACTIONS[key])
        on = frac > 0
        f = np.zeros_like(frac)
        f[on] = rng.dirichlet(400 * frac[on])
        pop = rng.permutation(np.repeat(np.arange(len(frac)), rng.multinomial(events, f)))
        level = _FCS_POPS[pop]
        neg = rng.normal(0, 45, level.shape)
        dim = np.exp(rng.normal(np.log(700), 0.3, level.shape))
        pos = np.exp(rng.normal(np.log(5000), 0.35, level.shape))
        fluor = np.where(level == 2, pos, np.where(level == 1, dim, neg))
        scatter = _FCS_SCATTER[pop] * np.exp(rng.normal(0, [0.1, 0.25], (events, 2)))
        t = np.sort(rng.uniform(0, 180, events))[:, None]
        ev = np.hstack([scatter, fluor, t]).astype("<f4")
        date = (c.infusion[i] + np.timedelta64(int(day), "D")).item()
        meta = {"FIL": Path(rel).name, "DATE": f"{date.day:02d}-{_MONTHS[date.month - 1]}-{date.year}",
                "CYT": "Synthetic cytometer", "SRC": sample_id}
        with open(out / rel, "wb") as fh:
            flowio.create_fcs(fh, array("f", ev.tobytes()), names, opt_channel_names=markers,
                              metadata_dict=meta)


# ---------------------------------------------------------------------------------------------
# entry points


def _study_toml(patients: int, cells: int, seed: int) -> str:
    return (
        "[study]\n"
        f'id = "{STUDY_ID}"\n'
        'title = "CD7 CAR-T in relapsed/refractory severe aplastic anaemia (synthetic demo)"\n'
        'description = "Synthetic data shaped like NCT07139600: invented patients, counts, '
        f"events and omics; generated by sample_data.generate with seed {seed}, {patients} "
        f'patients, {cells} cells. Not real patient data."\n'
        'registry = "NCT07139600"\n'
        "synthetic = true\n"
        "\n"
        "[single_cell]\n"
        'receptor_files = ["cell_receptors.tsv"]\n'
    )


def generate_study(out: str | Path, *, patients: int = 5, cells: int = 20000, seed: int = 7,
                   sc_timepoints: Sequence[str] = SC_TIMEPOINTS) -> Path:
    """Write a complete synthetic study folder to `out` and return its path.

    Same arguments give byte-identical CSV, TOML and FCS files (the .h5ad differs only in HDF5
    internals). `patients` >= 1; the first five follow the fixed demo story. `sc_timepoints`
    (default Screening, D28, M3) are the single-cell samples of each patient; any of the six
    TIMEPOINTS (D14 draws the D28 composition, M6 and M12 that of M3), for scale tests.
    """
    names = [t for t, _ in TIMEPOINTS]
    bad = [t for t in sc_timepoints if t not in names]
    if bad or not sc_timepoints:
        raise ValueError(f"sc_timepoints must be some of {', '.join(names)}, got "
                         f"{', '.join(bad) or 'none'}")
    if patients < 1:
        raise ValueError("patients must be at least 1")
    if cells < 0:
        raise ValueError("cells must be >= 0")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    c = _make_cohort(patients, seed)
    measurements, cbc = _measurements(c, seed)
    samples = _samples(c, tuple(t for t in names if t in set(sc_timepoints)))
    (out / "study.toml").write_text(_study_toml(patients, cells, seed), encoding="utf-8")
    c.frame.write_csv(out / "patients.csv")
    measurements.write_csv(out / "measurements.csv")
    _events(c, seed).write_csv(out / "events.csv")
    _responses(c, cbc).write_csv(out / "responses.csv")
    samples.write_csv(out / "samples.csv")
    _proteomics(c, samples, seed).write_csv(out / "proteomics.csv")
    _rna_counts(c, samples, seed).write_csv(out / "rna_counts.csv")
    _mutations(c, samples, seed).write_csv(out / "mutations.csv")
    tcr, expanded = _tcr(c, samples, seed)
    tcr.write_csv(out / "tcr.csv")
    _flow(c, samples, seed, out)
    sc_cells = _single_cell(c, samples, cells, seed, out / "single_cell.h5ad")
    _cell_receptors(c, sc_cells, expanded, seed).write_csv(out / "cell_receptors.tsv",
                                                           separator="\t")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m sample_data.generate",
        description="Write the seeded synthetic CD7 CAR-T / SAA study (shaped like NCT07139600).")
    ap.add_argument("--out", required=True, help="output study folder (created if missing)")
    ap.add_argument("--patients", type=int, default=5, help="number of patients (default 5)")
    ap.add_argument("--cells", type=int, default=20000,
                    help="single-cell cells in total (default 20000)")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    ap.add_argument("--sc-timepoints", default=",".join(SC_TIMEPOINTS),
                    help="single-cell timepoints, comma-separated (default "
                         f"{','.join(SC_TIMEPOINTS)}; any of "
                         f"{','.join(t for t, _ in TIMEPOINTS)})")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    path = generate_study(args.out, patients=args.patients, cells=args.cells, seed=args.seed,
                          sc_timepoints=[t.strip() for t in args.sc_timepoints.split(",")
                                         if t.strip()])
    print(f"wrote {path} ({args.patients} patients, {args.cells} cells, seed {args.seed}) "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
