"""gateway/sending"""
