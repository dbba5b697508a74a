# Class priors (DB + p.p.) and LoRA training: one job per (kind, concept, variant); checkpoint
# variants (e.g. db_es) are exported from their parent run's kept checkpoint, not retrained.


rule priors:
    input:
        f"{R}/data/prepared.json",
    output:
        f"{R}/priors/{{prior}}/index.csv",
    log:
        f"{R}/logs/priors/{{prior}}.log",
    benchmark:
        f"{R}/benchmarks/priors/{{prior}}.tsv"
    params:
        noun=lambda w: shlex.quote(prior_classes()[w.prior]),
        options=lambda w: opts(dcfg.prior_options(config)),
        base=config["models"]["base"],
        out=lambda w, output: output[0].rsplit("/", 1)[0],
    resources:
        gpu=1,  # GPUs per job (SLURM: sbatch --gpus; ignored by local --cores runs)
        mem_mb=4000,
        runtime=60,
    shell:
        "exec {PY} -m dcobench priors --class-noun {params.noun} --out {params.out} "
        "--base-model {params.base} --options {params.options} > {log} 2>&1"


def train_inputs(w):
    inputs = {"concept": concept_yaml(w.concept), "prepared": f"{R}/data/prepared.json"}
    if uses_prior(w.method):
        inputs["prior"] = f"{prior_dir(w.concept)}/index.csv"
    return inputs


rule train:
    input:
        unpack(train_inputs),
    output:
        lora=f"{R}/models/{{kind}}/{{concept}}/{{method}}/pytorch_lora_weights.safetensors",
        log_csv=f"{R}/models/{{kind}}/{{concept}}/{{method}}/train_log.csv",
        manifest=f"{R}/models/{{kind}}/{{concept}}/{{method}}/manifest.json",
    log:
        f"{R}/logs/train/{{kind}}/{{concept}}/{{method}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{kind}}/{{concept}}/{{method}}.tsv"
    wildcard_constraints:
        method=variant_regex(TRAINED),  # {method} is a variant name; its objective is params.method
    params:
        concept=lambda w: concept_dir(w.concept),
        out=lambda w: model_dir(w.kind, w.concept, w.method),
        method=lambda w: VARIANTS[w.method].method,
        prior=lambda w: f"--prior {prior_dir(w.concept)}" if uses_prior(w.method) else "",
        options=lambda w: opts(dcfg.train_options(config, w.kind, w.method)),
        base=config["models"]["base"],
    resources:
        gpu=1,  # GPUs per job (SLURM: sbatch --gpus; ignored by local --cores runs)
        mem_mb=8000,
        runtime=240,
    shell:
        "exec {PY} -m dcobench train --concept {params.concept} --method {params.method} "
        "--out {params.out} --base-model {params.base} {params.prior} "
        "--options {params.options} > {log} 2>&1"


if EXPORTED:

    rule export_checkpoint:
        input:
            lambda w: f"{model_dir(w.kind, w.concept, VARIANTS[w.method].checkpoint_of)}/manifest.json",
        output:
            lora=f"{R}/models/{{kind}}/{{concept}}/{{method}}/pytorch_lora_weights.safetensors",
            log_csv=f"{R}/models/{{kind}}/{{concept}}/{{method}}/train_log.csv",
            manifest=f"{R}/models/{{kind}}/{{concept}}/{{method}}/manifest.json",
        log:
            f"{R}/logs/train/{{kind}}/{{concept}}/{{method}}.log",
        wildcard_constraints:
            method=variant_regex(EXPORTED),  # checkpoint variants: no retraining
        params:
            parent=lambda w: model_dir(w.kind, w.concept, VARIANTS[w.method].checkpoint_of),
            step=lambda w: VARIANTS[w.method].step,
            out=lambda w: model_dir(w.kind, w.concept, w.method),
        shell:
            "exec {PY} -m dcobench prepare checkpoint --parent {params.parent} --step {params.step} "
            "--variant {wildcards.method} --out {params.out} > {log} 2>&1"
