# Analyses over trained models: noise distance ‖ε_θ − ε_φ‖² per timestep (paper Fig 8c).

ND = config["analysis"]["noise_distance"]


def noise_distance_runs():
    return [(s, m) for s in SUBJECTS for m in ND["methods"]]


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
        mem_mb=8000,
        runtime=60,
    shell:
        "{PY} -m dcobench analyze noise-distance --run {params.runs} --out {output} "
        "--base-model {params.base} --options {params.options} > {log} 2>&1"
