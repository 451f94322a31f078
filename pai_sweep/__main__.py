import sys

from pai_sweep.cli import main

sys.exit(main())
