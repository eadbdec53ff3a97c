"""``python -m vazhi_assets.demo``: the demo runner."""

import sys

from vazhi_assets.demo.runner import main

sys.exit(main())
