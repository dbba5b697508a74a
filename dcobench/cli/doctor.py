"""placeholder"""


def add_arguments(parser) -> None:
    parser.add_argument("--configfile", required=True)


def run(args) -> None:
    raise ValueError("not yet")
