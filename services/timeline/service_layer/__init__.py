"""The timeline's use cases (`handlers`) and the ports they need (`ports`)."""
