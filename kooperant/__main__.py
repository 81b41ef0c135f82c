from kooperant.cli import main

main()
