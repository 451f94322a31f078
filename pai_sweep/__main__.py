from pai_sweep.cli.entry import main

main()
