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
        noun=prior_noun_of,
        options=prior_options_of,
        base=job_model("base"),
        out=output_folder_of,
    shell:
        "exec {PY} -m dcobench priors --class-noun {params.noun} --out {params.out} "
        "--base-model {params.base} --options {params.options} > {log} 2>&1"


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
        concept=concept_dir_of,
        out=model_dir_of,
        objective=objective_of,
        prior=prior_flag_of,
        options=train_options_of,
        base=job_model("base"),
    shell:
        "exec {PY} -m dcobench train --concept {params.concept} --objective {params.objective} "
        "--out {params.out} --base-model {params.base} {params.prior} "
        "--options {params.options} > {log} 2>&1"


if EXPORTED:

    rule export_checkpoint:
        input:
            parent_manifest_of,
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
            parent=input_folder_of,
            step=checkpoint_step_of,
            out=model_dir_of,
        shell:
            "exec {PY} -m dcobench prepare checkpoint --parent {params.parent} --step {params.step} "
            "--variant {wildcards.variant} --out {params.out} > {log} 2>&1"
