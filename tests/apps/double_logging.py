"""An app module that configures logging the way a copy-pasted snippet often does: twice."""

import logging
import sys

for _ in range(2):
    logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))
