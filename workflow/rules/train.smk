# Class priors (DB + p.p.) and LoRA training: one job per (kind, concept, method).


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
        mem_mb=4000,
        runtime=60,
    shell:
        "{PY} -m dcobench priors --class-noun {params.noun} --out {params.out} "
        "--base-model {params.base} --options {params.options} > {log} 2>&1"


def train_inputs(w):
    inputs = {"concept": concept_yaml(w.concept), "prepared": f"{R}/data/prepared.json"}
    if w.method == "dbpp":
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
    params:
        concept=lambda w: concept_dir(w.concept),
        out=lambda w: model_dir(w.kind, w.concept, w.method),
        prior=lambda w: f"--prior {prior_dir(w.concept)}" if w.method == "dbpp" else "",
        options=lambda w: opts(dcfg.train_options(config, w.kind)),
        base=config["models"]["base"],
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "{PY} -m dcobench train --concept {params.concept} --method {wildcards.method} "
        "--out {params.out} --base-model {params.base} {params.prior} "
        "--options {params.options} > {log} 2>&1"
