"""Building and running the project as ops deploy it: the image, the manifests played with podman, releases."""
