"""Data management: queries on the casebook's forms, edit checks that raise and close them, source data verification."""
