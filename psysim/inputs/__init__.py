"""What a study reads: personas, transcripts and snippets, data files, and up-front checks of user input."""
