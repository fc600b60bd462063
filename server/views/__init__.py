"""One blueprint module per area of the web app."""
