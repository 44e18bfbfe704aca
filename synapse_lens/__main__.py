from synapse_lens.cli import main

raise SystemExit(main())
