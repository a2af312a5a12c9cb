from evaluate.cli import main

main()
