"""``python -m deepsampler.cli``: the ``deepsampler`` command."""

import sys

from deepsampler.cli import main

sys.exit(main())
