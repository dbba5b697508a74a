"""The results layout: every path under an experiment's folder `results/<exp>`, in one place.

The rules (workflow/rules/*.smk), the claims (`dcobench claims --results`,
`analysis.claims.read_world_scores`) and the report take their paths from here. Arguments are
names, or Snakemake wildcards written as themselves (`"{kind}"`), so one method gives a rule's
output pattern and the concrete file a target list asks for:

    Layout("results/demo").model_dir("{kind}", "{concept}", "{variant}")
    -> "results/demo/models/{kind}/{concept}/{variant}"

Paths are strings (Snakemake's), relative to the working directory when the root is.
Standard library only: the Snakefile builds one on every DAG build.
"""

from __future__ import annotations

from pathlib import Path

# every score table under an experiment folder: per model (samples) and per merge
SCORE_GLOBS = ("scores/*/*/*/*.csv", "merges/*/*/scores/*.csv")
SCORE_GLOBS_TEXT = "scores/<group>/<concept>/<variant>/<guide>.csv or merges/<pair>/<merge>/scores/<guide>.csv"


def results_dir(experiment: str, root: str = "results") -> str:
    """`results/<experiment>`: the folder of one configured experiment."""
    return f"{root}/{experiment}"


def bench_dir(root: str = "results") -> str:
    """`dcobench bench`'s JSONs, beside the experiment folders (read by the report)."""
    return f"{root}/bench"


def chunk_file(chunk: str) -> str:
    """A sampling chunk's done marker (`1of2.done`) in its chunks folder."""
    return f"{chunk}.done"


def chunk_files(folder: str, n: int) -> list[str]:
    """The done markers of a folder sampled as `n` chunks: folder/1of<n>.done ... <n>of<n>.done."""
    return [f"{folder}/{chunk_file(f'{i}of{n}')}" for i in range(1, n + 1)]


def pair(subject: str, style: str) -> str:
    """The folder name of a subject × style merge pair."""
    return f"{subject}__{style}"


class Layout:
    """The paths of one experiment folder (`root` = results/<exp>)."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(root)

    def __repr__(self) -> str:
        return f"Layout({self.root!r})"

    def _at(self, *parts: str) -> str:
        """root/part/...; the folder methods take `*files` to name a file inside."""
        return "/".join((self.root, *parts))

    # --- data -------------------------------------------------------------------------------
    def data_dir(self) -> str:
        """Concept folders a rule writes: the demo's and the world's drawn concepts."""
        return self._at("data")

    def fetched_concept(self, name: str, *files: str) -> str:
        """A source concept fetched from its dataset (rule fetch_concept)."""
        return self._at("data", "concepts", name, *files)

    def prepared(self, concept: str) -> str:
        """A concept's prepare record (every image decoded)."""
        return self._at("prepared", f"{concept}.json")

    def prepared_model(self, key: str) -> str:
        """models.<key>'s prepare record (preset built, folder or hub cache checked)."""
        return self._at("prepared", "models", f"{key}.json")

    def prior_dir(self, key: str, *files: str) -> str:
        """Class-prior images, keyed by class noun and generation settings."""
        return self._at("priors", key, *files)

    # --- models -----------------------------------------------------------------------------
    def model_dir(self, kind: str, concept: str, variant: str, *files: str) -> str:
        return self._at("models", kind, concept, variant, *files)

    def group_dir(self, kind: str, concept: str, group: str, *files: str) -> str:
        """Where a fused training group writes its members before train_member publishes them."""
        return self._at("models", kind, concept, ".groups", group, *files)

    def merge_dir(self, subject: str, style: str, merge: str, *files: str) -> str:
        return self._at("merges", pair(subject, style), merge, *files)

    # --- samples and scores -----------------------------------------------------------------
    def samples_dir(self, kind: str, concept: str, variant: str) -> str:
        """A model's sample folder; one subfolder per guide holds the PNGs and index.csv."""
        return self._at("samples", kind, concept, variant)

    def samples_index(self, kind: str, concept: str, variant: str, guide: str) -> str:
        return f"{self.samples_dir(kind, concept, variant)}/{guide}/index.csv"

    def scores(self, kind: str, concept: str, variant: str, guide: str) -> str:
        """A sample folder's long score table."""
        return self._at("scores", kind, concept, variant, f"{guide}.csv")

    def merge_samples_dir(self, subject: str, style: str, merge: str) -> str:
        return f"{self.merge_dir(subject, style, merge)}/samples"

    def merge_samples_index(self, subject: str, style: str, merge: str, guide: str) -> str:
        return f"{self.merge_samples_dir(subject, style, merge)}/{guide}/index.csv"

    def merge_scores(self, subject: str, style: str, merge: str, guide: str) -> str:
        return f"{self.merge_dir(subject, style, merge)}/scores/{guide}.csv"

    def sample_chunks(self, kind: str, concept: str, variant: str, *files: str) -> str:
        """The folder of a model's sampling chunk markers (`chunk_file(<i>of<n>)`)."""
        return self._at("chunks", "samples", kind, concept, variant, *files)

    def sample_group_chunks(self, kind: str, concept: str, group: str, *files: str) -> str:
        """The chunk markers of a grouped sampling job (sample.group_size), before sample_member
        writes each member's own."""
        return self._at("chunks", "samples", kind, concept, ".groups", group, *files)

    def score_group_dir(self, kind: str, concept: str, group: str, *files: str) -> str:
        """Where a grouped scoring job (score.group_size) writes its members' tables and its
        done.json, before score_member publishes each member's folder."""
        return self._at("scores", kind, concept, ".groups", group, *files)

    def merge_chunks(self, subject: str, style: str, merge: str, *files: str) -> str:
        return self._at("chunks", "merges", pair(subject, style), merge, *files)

    def embedding_cache(self) -> str:
        """The default score.cache_dir."""
        return self._at("cache", "embeddings")

    def score_tables(self) -> list[Path]:
        """Every score table the folder holds now (samples, then merges), each glob sorted."""
        root = Path(self.root)
        return [p for pattern in SCORE_GLOBS for p in sorted(root.glob(pattern))]

    # --- analyses, tables, report -----------------------------------------------------------
    def noise_distance_run(self, concept: str, variant: str) -> str:
        return self._at("analysis", "noise_distance", concept, variant, "noise_distance.csv")

    def noise_distance(self) -> str:
        return self._at("analysis", "noise_distance.csv")

    def lora_cosine(self) -> str:
        return self._at("analysis", "lora_cosine.csv")

    def tables_dir(self) -> str:
        return self._at("tables")

    def table(self, name: str) -> str:
        """tables/<name> (a file with its extension, or an experiment's folder)."""
        return self._at("tables", name)

    def figures_dir(self) -> str:
        return self._at("figures")

    def report(self) -> str:
        return self._at("report.html")

    # --- every rule's log and benchmark -----------------------------------------------------
    def log(self, rule: str, *parts: str) -> str:
        """logs/<rule>[/<part>...].log"""
        return self._at("logs", *self._name(rule, parts)) + ".log"

    def benchmark(self, rule: str, *parts: str) -> str:
        """benchmarks/<rule>[/<part>...].tsv"""
        return self._at("benchmarks", *self._name(rule, parts)) + ".tsv"

    @staticmethod
    def _name(rule: str, parts: tuple[str, ...]) -> tuple[str, ...]:
        return (rule, *parts)
