# dcobench: reproduce, stress and extend DCO (arXiv 2402.12004) on SDXL.
# `snakemake --cores all` runs config.yaml (the embedded demo: a reduced world experiment;
# config/tiny.yaml is the random-weight plumbing config);
# `snakemake --configfile config/paper.yaml --profile slurm` the SDXL reproduction.
from snakemake.utils import min_version

min_version("8.0")

import sys
from pathlib import Path

from dcobench.precheck import PrecheckError, check_yaml_file, precheck

# Every config file (config.yaml and each --configfile, already in workflow.configfiles) re-read
# strictly: a Latin-1 file or a key given twice is refused, naming the file and the line, instead
# of a YAML traceback or the last `seed:` silently winning.
try:
    for path in dict.fromkeys(["config.yaml", *map(str, workflow.configfiles)]):
        check_yaml_file(path)
except PrecheckError as exc:
    sys.exit(f"dcobench: {exc}")


configfile: "config.yaml"


SCHEMA = "workflow/schemas/config.schema.yaml"
READ = ["config.yaml", *map(str, workflow.configfiles)]  # a mistake names the file that sets it
try:  # non-finite numbers, numbers written as text, unsafe names: by key, in words
    precheck(config, Path(workflow.basedir) / SCHEMA, READ)
except PrecheckError as exc:
    sys.exit(f"dcobench: {exc}")


from dcobench.spec.schema import validate_config

# the schema file + every declared option (dcobench/spec); fills in the defaults
validate_config(config, Path(workflow.basedir) / SCHEMA)

# An overlay that keeps another run's `experiment` would overwrite its results: refused (-n too).
from dcobench.layout import results_dir
from dcobench.ownership import OwnershipError, check_owner, claim

CONFIGFILES = [*workflow.configfiles, *(workflow.overwrite_configfiles or [])]
RESULTS = Path(results_dir(config["experiment"]))
if not workflow.remote_exec:
    try:
        check_owner(RESULTS, CONFIGFILES)
    except OwnershipError as exc:
        sys.exit(f"dcobench: {exc}")


onstart:
    claim(RESULTS, CONFIGFILES)


include: "workflow/rules/common.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/world.smk"  # the world plug-in's own rules (dcobench/world)


rule all:
    default_target: True
    input:
        all_targets(),
