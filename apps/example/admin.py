from django.contrib import admin

from .models import ExampleUser


@admin.register(ExampleUser)
class ExampleUserAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "created_at"]
    search_fields = ["name", "email"]
