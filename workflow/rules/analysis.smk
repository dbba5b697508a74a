# Analyses over trained models: noise distance per timestep (Fig 8c), LoRA column cosine (Fig 10).

ND = config["analysis"]["noise_distance"]
# noise_distance_runs(): (subject, variant) pairs from the selected experiments (common.smk)


rule noise_distance:
    input:
        [f"{model_dir('subject', s, m)}/pytorch_lora_weights.safetensors" for s, m in noise_distance_runs()],
    output:
        f"{R}/analysis/noise_distance.csv",
    log:
        f"{R}/logs/analysis/noise_distance.log",
    benchmark:
        f"{R}/benchmarks/analysis/noise_distance.tsv"
    params:
        runs=" ".join(
            f"{concept_dir(s)}:{m}:{model_dir('subject', s, m)}" for s, m in noise_distance_runs()
        ),
        options=opts(
            {
                "timesteps": ND["timesteps"],
                "noises": ND["noises"],
                "resolution": config["train"]["resolution"],
                "seed": config["seed"],
            }
        ),
        base=config["models"]["base"],
    resources:
        gpu=1,  # GPUs per job (SLURM: sbatch --gpus; ignored by local --cores runs)
        mem_mb=8000,
        runtime=60,
    shell:
        "exec {PY} -m dcobench analyze noise-distance --run {params.runs} --out {output} "
        "--base-model {params.base} --options {params.options} > {log} 2>&1"


def lora_cosine_files():
    return [f"{R}/analysis/lora_cosine.csv"] if lora_cosine_runs() else []


# Per-layer cosine between subject and style LoRA columns (paper Fig 10); weights only, CPU.
rule lora_cosine:
    input:
        [
            f"{model_dir(k, c, m)}/pytorch_lora_weights.safetensors"
            for s, t, m in lora_cosine_runs()
            for k, c in (("subject", s), ("style", t))
        ],
    output:
        f"{R}/analysis/lora_cosine.csv",
    log:
        f"{R}/logs/analysis/lora_cosine.log",
    benchmark:
        f"{R}/benchmarks/analysis/lora_cosine.tsv"
    params:
        pairs=" ".join(
            f"{m}:{model_dir('subject', s, m)}:{model_dir('style', t, m)}"
            for s, t, m in lora_cosine_runs()
        ),
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "exec {PY} -m dcobench analyze lora-cosine --pair {params.pairs} --out {output} > {log} 2>&1"
