"""A request's lifecycle, free of I/O: its states (`states`), what it is and what follows its run (`plan`), how it
ended (`outcome`), and the one order in which every path ends it (`finish`), through small protocols (`ports`)."""
