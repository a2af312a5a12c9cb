from anonymize.cli import main

main()
