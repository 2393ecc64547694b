from numbacnn.cli import main

main(prog_name="numbacnn")
