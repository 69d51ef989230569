"""Write a new project: validate its name, copy the template, write `.env` and the manifest."""
