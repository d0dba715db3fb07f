from sluice.cli.main import app

app(prog_name="sluice")
