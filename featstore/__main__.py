from featstore.cli import main

main()
