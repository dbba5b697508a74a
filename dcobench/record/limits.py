"""How large a record may be (imported by the CLI's help, so it imports nothing)."""

MAX_BYTES = 2_000_000  # a record, all files together
IMAGE_BYTES = 200_000  # the sample grids together
MIN_SIDE = 96  # grids are not shrunk below this many pixels on their long side
