from fabbrica.cli import main

main()
