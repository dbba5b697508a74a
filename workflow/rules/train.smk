# Class priors (DB + p.p.) and LoRA training: one job per (kind, concept, variant); checkpoint
# variants (e.g. db_es) are exported from their parent run's kept checkpoint, not retrained.
# Training outputs are update(): Snakemake keeps the previous model until the job succeeds (the
# trainer builds the new folder aside and swaps it in), and restores it if the job fails.


rule priors:
    input:
        model_json("base"),
    output:
        f"{R}/priors/{{prior}}/index.csv",
    log:
        f"{R}/logs/priors/{{prior}}.log",
    benchmark:
        f"{R}/benchmarks/priors/{{prior}}.tsv"
    params:
        noun=lambda w: shlex.quote(prior_classes()[w.prior]),
        options=lambda w: opts(dcfg.prior_options(config)),  # a function: the prompt holds {class}
        base=config["models"]["base"],
        out=lambda w, output: folder(output[0]),
    shell:
        "exec {PY} -m dcobench priors --class-noun {params.noun} --out {params.out} "
        "--base-model {params.base} --options {params.options} > {log} 2>&1"


def train_inputs(w):
    inputs = {
        "concept": concept_yaml(w.concept),
        "prepared": prepared(w.concept),
        "base": model_json("base"),
    }
    if VARIANTS[w.variant].prior:
        inputs["prior"] = f"{prior_dir(w.concept)}/index.csv"
    return inputs


def prior_flag_of(w):
    return f"--prior {prior_dir(w.concept)}" if VARIANTS[w.variant].prior else ""


rule train:
    input:
        unpack(train_inputs),
    output:
        lora=update(f"{R}/models/{{kind}}/{{concept}}/{{variant}}/{LORA}"),
        log_csv=update(f"{R}/models/{{kind}}/{{concept}}/{{variant}}/train_log.csv"),
        manifest=update(f"{R}/models/{{kind}}/{{concept}}/{{variant}}/manifest.json"),
    log:
        f"{R}/logs/train/{{kind}}/{{concept}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{kind}}/{{concept}}/{{variant}}.tsv"
    wildcard_constraints:
        variant=variant_regex(TRAINED),
    params:
        concept=lambda w: concept_dir(w.concept),
        out=model_dir_of,
        objective=lambda w: VARIANTS[w.variant].objective,
        prior=prior_flag_of,
        options=lambda w: opts(dcfg.train_options(config, w.kind, w.variant)),
        base=config["models"]["base"],
    shell:
        "exec {PY} -m dcobench train --concept {params.concept} --objective {params.objective} "
        "--out {params.out} --base-model {params.base} {params.prior} "
        "--options {params.options} > {log} 2>&1"


if EXPORTED:

    rule export_checkpoint:
        input:
            lambda w: f"{model_dir(w.kind, w.concept, VARIANTS[w.variant].checkpoint_of)}/manifest.json",
        output:
            lora=f"{R}/models/{{kind}}/{{concept}}/{{variant}}/{LORA}",
            log_csv=f"{R}/models/{{kind}}/{{concept}}/{{variant}}/train_log.csv",
            manifest=f"{R}/models/{{kind}}/{{concept}}/{{variant}}/manifest.json",
        log:
            f"{R}/logs/train/{{kind}}/{{concept}}/{{variant}}.log",
        benchmark:
            f"{R}/benchmarks/export_checkpoint/{{kind}}/{{concept}}/{{variant}}.tsv"
        wildcard_constraints:
            variant=variant_regex(EXPORTED),  # checkpoint variants: no retraining
        params:
            parent=lambda w, input: folder(input[0]),
            step=lambda w: VARIANTS[w.variant].step,
            out=model_dir_of,
        shell:
            "exec {PY} -m dcobench prepare checkpoint --parent {params.parent} --step {params.step} "
            "--variant {wildcards.variant} --out {params.out} > {log} 2>&1"
