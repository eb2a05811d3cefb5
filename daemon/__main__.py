from trackd.daemon._service import main

raise SystemExit(main())
