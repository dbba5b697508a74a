# The files the selected experiments need (PLAN, dcobench/experiments.py): the inputs of the
# aggregate, claims and report rules and of `rule all`.


# --- targets ------------------------------------------------------------------------------


def score_files():
    """Every score table the selected experiments need (the aggregate rule's inputs)."""
    files = [L.scores(k, c, v, g) for k, c, v in PLAN.evaluated for g in GUIDES]
    files += [L.scores(k, c, "pretrained", "cfg") for k, c in PLAN.pretrained]  # base model, CFG
    files += [L.merge_scores(s, t, mg, g) for s, t, mg in PLAN.merges for g in MERGE_GUIDES]
    return files


def train_logs():
    """train_log.csv of every model the selected experiments need (the report's loss plots)."""
    return [model_dir(k, c, v, "train_log.csv") for k, c, v in PLAN.models]


def sample_indexes():
    """index.csv of every sample folder the selected experiments score (the report's grids)."""
    files = [L.samples_index(k, c, v, g) for k, c, v in PLAN.evaluated for g in GUIDES]
    files += [L.samples_index(k, c, "pretrained", "cfg") for k, c in PLAN.pretrained]
    files += [L.merge_samples_index(s, t, mg, g) for s, t, mg in PLAN.merges for g in MERGE_GUIDES]
    return files


def noise_distance_files():
    return [L.noise_distance()] if PLAN.noise_distance else []


def lora_cosine_files():
    return [L.lora_cosine()] if PLAN.lora_cosine else []


def experiment_tables():
    """tables/{experiment}/ of every experiment that scores something (the report writes its
    variant and paired tables there; the aggregated tables hold exactly these experiments)."""
    return [directory(L.table(e)) for e in PLAN.membership()]


def lora_cosine_tables():
    """tables/lora_cosine.{csv,md,tex} (the report's per-block table) when the analysis runs."""
    if not PLAN.lora_cosine:
        return []
    return [L.table(f"lora_cosine.{ext}") for ext in ("csv", "md", "tex")]


def claims_files():
    """tables/claims.csv when report.claims names a claims file, else [] (the report's input)."""
    return [L.table("claims.csv")] if config["report"].get("claims") else []


def all_targets():
    """The report (which pulls every score table and analysis) + the LoRA-cosine analysis."""
    return [L.report()] + lora_cosine_files()
