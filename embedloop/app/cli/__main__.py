from embedloop.app.cli.main import main

main()
