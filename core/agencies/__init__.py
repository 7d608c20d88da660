"""Partner agencies: councils, NHS trusts, schools, housing, charities."""
