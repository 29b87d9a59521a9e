from mcpserve.cli import main

main()
