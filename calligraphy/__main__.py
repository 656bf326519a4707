import sys

from calligraphy.cli import main

sys.exit(main())
