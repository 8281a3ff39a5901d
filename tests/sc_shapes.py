"""Small single-cell files in the shapes real tools write, for the store, import and page tests.

All share one seeded design: 2 patients (3 for the Seurat shapes), 2 timepoints each, 3 cell
types with 10 planted marker genes each (CD3E/CD8A... for T, NKG7/GNLY for NK, MS4A1/CD79A for
B), Poisson counts. `EXPECT` holds what a reader must find in every shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_CELLS = 180
TYPES = ("CD8 T", "NK", "B")
MARKERS = {"CD8 T": ("CD3E", "CD8A", "CD3D", "CD2", "GZMK", "CD7", "IL7R", "LCK", "CD27",
                     "CCR7"),
           "NK": ("NKG7", "GNLY", "KLRD1", "PRF1", "FCGR3A", "KLRF1", "NCAM1", "GZMB",
                  "CTSW", "KLRB1"),
           "B": ("MS4A1", "CD79A", "CD79B", "CD19", "BANK1", "PAX5", "CD22", "TCL1A", "FCER2",
                 "VPREB3")}
OTHER = tuple(f"GENE{i}" for i in range(30))
SYMBOLS = tuple(g for t in TYPES for g in MARKERS[t]) + OTHER
ENSEMBL = tuple(f"ENSG{100000 + i:011d}" for i in range(len(SYMBOLS)))
PATIENTS = ("P1", "P2")
LABELS = ("Baseline", "Day 28")          # -> days -7 and 28 by default
EXPECT = {"patients": {"P1", "P2"}, "days": {-7, 28}, "cell_types": set(TYPES)}


def design(seed: int = 0, n: int = N_CELLS, patients: tuple[str, ...] = PATIENTS):
    rng = np.random.default_rng(seed)
    types = np.array(TYPES)[np.arange(n) % 3]
    lam = np.full((n, len(SYMBOLS)), 0.4)
    for k, t in enumerate(TYPES):
        lam[types == t, k * 10:(k + 1) * 10] = 6.0
    counts = rng.poisson(lam).astype(np.float32)
    block = np.arange(n) * len(patients) * 2 // n
    patient = np.array(patients)[block // 2]
    label = np.array(LABELS)[block % 2]
    umap = np.column_stack([np.arange(n) % 3 * 5.0 + rng.normal(0, 0.5, n),
                            rng.normal(0, 1, n)]).astype(np.float32)
    return counts, types, patient, label, umap


def lognorm(counts: np.ndarray) -> np.ndarray:
    return np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4).astype(np.float32)


def _cat(values):
    import pandas as pd

    return pd.Categorical(values)


def scanpy_processed(path: Path) -> Path:
    """As the scanpy PBMC tutorial leaves it: .raw = log-normalised (all genes), X = the
    highly variable genes scaled and centred (dense, negative values), obs leiden/n_genes/
    total_counts/pct_counts_mt plus patient, sample and timepoint labels, obsm X_pca/X_umap."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    counts, types, patient, label, umap = design()
    log = lognorm(counts)
    full = ad.AnnData(sp.csr_matrix(log), var=pd.DataFrame(index=list(SYMBOLS)))
    hvg = np.arange(0, len(SYMBOLS), 2)
    x = log[:, hvg]
    scaled = np.clip((x - x.mean(0)) / (x.std(0) + 1e-9), None, 10).astype(np.float32)
    leiden = {"CD8 T": "0", "NK": "1", "B": "2"}
    obs = pd.DataFrame({
        "n_genes": (counts > 0).sum(1), "total_counts": counts.sum(1),
        "pct_counts_mt": np.zeros(len(types)), "leiden": _cat([leiden[t] for t in types]),
        "patient": _cat(patient), "sample": _cat([f"{p}_{t}" for p, t in zip(patient, label, strict=True)]),
        "timepoint": _cat(label)}, index=[f"AAAC{i:06d}-1" for i in range(len(types))])
    adata = ad.AnnData(scaled, obs=obs, var=pd.DataFrame(
        {"highly_variable": True, "mean": x.mean(0), "std": x.std(0)},
        index=[SYMBOLS[j] for j in hvg]))
    adata.raw = full
    adata.obsm["X_pca"] = np.random.default_rng(1).normal(size=(len(types), 10)).astype(
        np.float32)
    adata.obsm["X_umap"] = umap
    adata.uns["log1p"] = {"base": None}
    adata.write_h5ad(path)
    return path


def cellxgene(path: Path) -> Path:
    """As CELLxGENE curates: var_names Ensembl ids with symbols in var feature_name, X
    log-normalised, raw.X integer counts, obs donor_id / cell_type (ontology labels) /
    tissue / assay / disease as categoricals, a time_point label column, obsm X_umap."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    counts, types, patient, label, umap = design(seed=2)
    names = {"CD8 T": "CD8 T", "NK": "NK", "B": "B"}
    var = pd.DataFrame({"feature_name": _cat(list(SYMBOLS)), "feature_is_filtered": False,
                        "feature_reference": _cat(["NCBITaxon:9606"] * len(SYMBOLS))},
                       index=list(ENSEMBL))
    obs = pd.DataFrame({
        "donor_id": _cat(patient), "cell_type": _cat([names[t] for t in types]),
        "cell_type_ontology_term_id": _cat(["CL:0000625"] * len(types)),
        "tissue": _cat(["blood"] * len(types)), "assay": _cat(["10x 5' v2"] * len(types)),
        "disease": _cat(["aplastic anemia"] * len(types)), "time_point": _cat(label),
        "is_primary_data": True}, index=[f"cell{i}" for i in range(len(types))])
    adata = ad.AnnData(sp.csr_matrix(lognorm(counts)), obs=obs, var=var)
    adata.raw = ad.AnnData(sp.csr_matrix(counts), var=var)
    adata.obsm["X_umap"] = umap
    adata.uns["schema_version"] = "5.2.0"
    adata.write_h5ad(path, compression="gzip")
    return path


def seurat_converted(path: Path, *, counts_in: str = "X") -> Path:
    """As SeuratDisk/sceasy convert a Seurat object: counts in X (`counts_in="X"`, obs
    orig.ident naming the patient, visit labels) or log-normalised "data" in X with counts
    in layers["counts"] (`counts_in="layers"`, orig.ident naming the sample, a patient column
    and numeric days); seurat_clusters, nCount_RNA, nFeature_RNA; obsm "umap" and "pca"."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    counts, types, patient, label, umap = design(seed=3)
    clusters = {"CD8 T": "0", "NK": "1", "B": "2"}
    obs = pd.DataFrame({"nCount_RNA": counts.sum(1), "nFeature_RNA": (counts > 0).sum(1),
                        "seurat_clusters": _cat([clusters[t] for t in types])},
                       index=[f"cell_{i}" for i in range(len(types))])
    if counts_in == "X":
        obs["orig.ident"] = _cat(patient)
        obs["visit"] = _cat(label)
        adata = ad.AnnData(sp.csr_matrix(counts), obs=obs,
                           var=pd.DataFrame(index=list(SYMBOLS)))
    else:
        days = np.where(label == LABELS[0], -7, 28)
        obs["orig.ident"] = _cat([f"{p}_d{d}" for p, d in zip(patient, days, strict=True)])
        obs["patient_id"] = _cat(patient)
        obs["day"] = days
        adata = ad.AnnData(sp.csr_matrix(lognorm(counts)), obs=obs,
                           var=pd.DataFrame(index=list(SYMBOLS)),
                           layers={"counts": sp.csr_matrix(counts)})
    adata.obsm["umap"] = umap
    adata.obsm["pca"] = np.random.default_rng(4).normal(size=(len(types), 10)).astype(
        np.float32)
    adata.write_h5ad(path)
    return path


def loom(path: Path) -> Path:
    """As loompy writes (genes x cells /matrix of counts, row_attrs Gene/Accession, col_attrs
    CellID plus annotations, an embedding as two 1-D col_attrs UMAP_1/UMAP_2)."""
    import h5py

    counts, types, patient, label, umap = design(seed=5)
    with h5py.File(path, "w") as f:
        f.attrs["LOOM_SPEC_VERSION"] = "3.0.0"
        f.create_dataset("matrix", data=counts.T, chunks=(16, 16), compression="gzip")
        f.create_group("layers")
        ra = f.create_group("row_attrs")
        ra["Gene"] = np.array(SYMBOLS, dtype="S")
        ra["Accession"] = np.array(ENSEMBL, dtype="S")
        ca = f.create_group("col_attrs")
        ca["CellID"] = np.array([f"c{i}" for i in range(len(types))], dtype="S")
        ca["patient"] = np.array(patient, dtype="S")
        ca["timepoint"] = np.array(label, dtype="S")
        ca["CellType"] = np.array(types, dtype="S")
        ca["UMAP_1"], ca["UMAP_2"] = umap[:, 0], umap[:, 1]
        f.create_group("col_graphs")
        f.create_group("row_graphs")
    return path


def zarr_store(path: Path) -> Path:
    """An AnnData written with write_zarr (X counts CSR, obs subject/sample/timepoint)."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    counts, types, patient, label, umap = design(seed=6)
    obs = pd.DataFrame({"subject": _cat(patient), "timepoint": _cat(label),
                        "celltype": _cat(types)}, index=[f"z{i}" for i in range(len(types))])
    adata = ad.AnnData(sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=list(SYMBOLS)))
    adata.obsm["X_umap"] = umap
    adata.write_zarr(path)
    return path


SHAPES = {"scanpy.h5ad": scanpy_processed, "cellxgene.h5ad": cellxgene,
          "seurat_counts.h5ad": seurat_converted,
          "seurat_layers.h5ad": lambda p: seurat_converted(p, counts_in="layers"),
          "cells.loom": loom, "cells.zarr": zarr_store}
