from dfnet.cli import main

raise SystemExit(main())
