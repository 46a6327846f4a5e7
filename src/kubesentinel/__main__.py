from kubesentinel.cli import main

raise SystemExit(main())
