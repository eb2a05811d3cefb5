from trackd._cli import main

raise SystemExit(main())
