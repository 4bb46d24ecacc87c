from avadet.cli import main

raise SystemExit(main())
