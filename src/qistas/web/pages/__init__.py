"""Page routes of the browser UI, one module per audience."""
