"""Public response models that are contracts between services.

The owning service answers with them (its routes' response models) and the gateway,
which forwards those answers as they are, documents them in its OpenAPI without
importing the owner's package: users (user-directory), the in-app feed and
notifications (dispatcher).
"""
