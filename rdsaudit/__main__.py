from rdsaudit.cli import main

main()
