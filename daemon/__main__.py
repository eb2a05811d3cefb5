from trackd.daemon.service import main

raise SystemExit(main())
