from trackd.cli.main import main

raise SystemExit(main())
