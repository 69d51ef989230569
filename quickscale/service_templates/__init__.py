"""Sources of `quickscale generate-service`: valid Python with a placeholder name.

Each `<type>.py` is a service module and `test_<type>.py` its test. The
generator replaces `service_template_name` and `ServiceTemplateName` with the
new name and the lines marked `# quickscale:cost` / `# quickscale:description`
with the chosen values. They import the generated project's modules, so they
are linted in the project (the generator's tests build one), not here.
"""
